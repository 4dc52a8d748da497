//! Seeded randomness: one splitmix64 generator, so a run replays exactly from its seed (the
//! schedule, every client's choice of operation, sizes, seeds of `fill`, put contents), and the
//! same stream the worker's built-in `fill` writes, so digests can be recomputed here.

use sha2::{Digest, Sha256};

/// A splitmix64 generator. Not cryptographic; deterministic for a given seed on every platform.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
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
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// What the worker's built-in `fill BYTES SEED` returns: the splitmix64 stream from `seed`,
/// little-endian, truncated to `len`.
pub fn fill_bytes(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Lowercase hex SHA-256, what the built-in `digest` returns.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_the_worker_definition() {
        // The worker's own test pins the first output for seed 0.
        assert_eq!(fill_bytes(8, 0), 0xe220_a839_7b1d_cdafu64.to_le_bytes());
        assert_eq!(&fill_bytes(13, 7)[..], &fill_bytes(20, 7)[..13]);
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
