//! Seeded randomness: one splitmix64 generator, so a run replays exactly from its seed (the
//! schedule, every client's choice of operation, sizes, seeds of `fill`, put contents). It is
//! the SDK's [`SplitMix64`], the stream the worker's built-in `fill` writes.

use xnai_sdk::builtins::SplitMix64;
pub use xnai_sdk::builtins::{fill_bytes, sha256_hex};

/// The harness's generator: [`SplitMix64`] plus named streams and ranges. Not cryptographic;
/// deterministic for a given seed on every platform.
#[derive(Clone, Debug)]
pub struct Rng {
    inner: SplitMix64,
}

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: SplitMix64::new(seed),
        }
    }

    /// A generator for a named stream of a run (`"schedule"`, `"client-3"`): independent streams
    /// from one seed, so adding a client does not change the schedule.
    pub fn derive(seed: u64, stream: &str) -> Self {
        let mut h = seed ^ 0x5851_F42D_4C95_7F2D;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        let mut r = Self::new(h);
        r.next_u64();
        r
    }

    /// The next 64-bit output (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// `len` bytes of this stream.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        self.inner.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_contents_are_the_fill_stream() {
        assert_eq!(Rng::new(7).bytes(13), fill_bytes(13, 7));
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| Rng::derive(9, "x").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::derive(9, "x").next_u64(),
            Rng::derive(9, "y").next_u64()
        );
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.range(3, 5) >= 3 && r.range(3, 5) <= 5));
    }
}
