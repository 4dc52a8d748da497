//! What the workers' built-in task functions compute, defined once: `fill BYTES SEED` (the
//! splitmix64 stream) and `digest REF` (lowercase hex SHA-256). The worker runs these very
//! functions, and clients, tests and the chaos harness recompute results with them.

use sha2::{Digest, Sha256};

/// The splitmix64 generator behind `fill`. Not cryptographic; deterministic for a given seed
/// on every platform, so a seeded run (a test, a chaos schedule) replays exactly.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next `len` bytes of the stream: each output little-endian, the last one truncated.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// What the built-in `fill BYTES SEED` returns: `len` bytes of the splitmix64 stream starting
/// from state = `seed`, each output written little-endian, truncated to `len`.
pub fn fill_bytes(len: usize, seed: u64) -> Vec<u8> {
    SplitMix64::new(seed).bytes(len)
}

/// What the built-in `digest REF` returns: the lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bytes_is_splitmix64_little_endian() {
        // First splitmix64 output for seed 0 is 0xe220a8397b1dcdaf.
        assert_eq!(fill_bytes(8, 0), 0xe220_a839_7b1d_cdafu64.to_le_bytes());
        let long = fill_bytes(20, 7);
        assert_eq!(long.len(), 20);
        assert_eq!(&fill_bytes(13, 7)[..], &long[..13]);
        assert!(fill_bytes(0, 1).is_empty());
    }

    #[test]
    fn digest_is_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
