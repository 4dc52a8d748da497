//! GGUF reader tests: synthetic headers built byte by byte, garbage and truncation at every
//! length, and the real Gemma 3 270M file when it is present.

use std::io::Cursor;
use std::path::PathBuf;

use super::*;

/// Builds GGUF bytes for tests.
#[derive(Default)]
pub(crate) struct GgufBuilder {
    kvs: Vec<u8>,
    kv_count: u64,
    tensors: Vec<u8>,
    tensor_count: u64,
    data_bytes: u64,
}

impl GgufBuilder {
    fn key(&mut self, key: &str, ty: u32) {
        self.kvs.extend((key.len() as u64).to_le_bytes());
        self.kvs.extend(key.as_bytes());
        self.kvs.extend(ty.to_le_bytes());
        self.kv_count += 1;
    }

    pub(crate) fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key, 8);
        self.kvs.extend((value.len() as u64).to_le_bytes());
        self.kvs.extend(value.as_bytes());
        self
    }

    pub(crate) fn u32(mut self, key: &str, value: u32) -> Self {
        self.key(key, 4);
        self.kvs.extend(value.to_le_bytes());
        self
    }

    pub(crate) fn string_array(mut self, key: &str, values: &[&str]) -> Self {
        self.key(key, 9);
        self.kvs.extend(8u32.to_le_bytes());
        self.kvs.extend((values.len() as u64).to_le_bytes());
        for v in values {
            self.kvs.extend((v.len() as u64).to_le_bytes());
            self.kvs.extend(v.as_bytes());
        }
        self
    }

    /// Adds an F32 tensor of `dims`.
    pub(crate) fn tensor(mut self, name: &str, dims: &[u64]) -> Self {
        self.tensors.extend((name.len() as u64).to_le_bytes());
        self.tensors.extend(name.as_bytes());
        self.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend(d.to_le_bytes());
        }
        self.tensors.extend(0u32.to_le_bytes());
        self.tensors.extend(self.data_bytes.to_le_bytes());
        self.data_bytes += dims.iter().product::<u64>() * 4;
        self.tensor_count += 1;
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.tensor_count.to_le_bytes());
        out.extend(self.kv_count.to_le_bytes());
        out.extend(self.kvs);
        out.extend(self.tensors);
        out.resize(out.len().div_ceil(32) * 32, 0);
        out.resize(out.len() + self.data_bytes as usize, 0);
        out
    }
}

/// A tiny llama-like model header.
pub(crate) fn tiny_model() -> Vec<u8> {
    GgufBuilder::default()
        .string("general.architecture", "llama")
        .string("general.name", "tiny")
        .u32("general.file_type", 0)
        .u32("llama.context_length", 256)
        .u32("llama.embedding_length", 64)
        .u32("llama.block_count", 2)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .string_array("tokenizer.ggml.tokens", &["a", "b", "c"])
        .tensor("token_embd.weight", &[64, 3])
        .tensor("output_norm.weight", &[64])
        .build()
}

fn parse(bytes: &[u8]) -> Result<GgufHeader> {
    GgufHeader::read(Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn reads_synthetic_header() {
    let bytes = tiny_model();
    let h = parse(&bytes).expect("valid header");
    assert_eq!(h.version, 3);
    assert_eq!(h.tensor_count, 2);
    assert_eq!(h.tensor_data_bytes, 64 * 3 * 4 + 64 * 4);
    let f = h.model_facts().expect("facts");
    assert_eq!(f.architecture, "llama");
    assert_eq!(f.name.as_deref(), Some("tiny"));
    assert_eq!(f.block_count, 2);
    assert_eq!(f.head_count_kv, 2);
    assert_eq!(f.key_length, 16, "defaults to n_embd / n_head");
    assert_eq!(f.vocab_size, 3, "from the token list");
    assert_eq!(f.file_type.as_deref(), Some("F32"));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = tiny_model();
    for cut in 0..bytes.len() {
        assert!(
            parse(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes parsed"
        );
    }
}

#[test]
fn garbage_is_rejected() {
    let err = parse(b"PK\x03\x04 this is a zip").expect_err("not gguf");
    assert!(matches!(err, InferenceError::NotGguf { .. }), "{err}");
    let mut bytes = tiny_model();
    bytes[4] = 9;
    let err = parse(&bytes).expect_err("bad version");
    assert!(
        matches!(err, InferenceError::UnsupportedGgufVersion(9)),
        "{err}"
    );
}

#[test]
fn absurd_lengths_are_capped() {
    // A metadata count of 2^60 must not allocate or loop.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend((1u64 << 60).to_le_bytes());
    assert!(matches!(parse(&bytes), Err(InferenceError::Malformed(_))));
    // A key whose length field claims 1 TiB.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend((1u64 << 40).to_le_bytes());
    bytes.extend([0u8; 16]);
    assert!(matches!(parse(&bytes), Err(InferenceError::Malformed(_))));
}

#[test]
fn random_flips_never_panic() {
    let bytes = tiny_model();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let mut copy = bytes.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % copy.len() as u64) as usize;
            copy[i] = (state >> 32) as u8;
        }
        let _ = parse(&copy);
    }
}

#[test]
fn missing_required_metadata_is_named() {
    let bytes = GgufBuilder::default()
        .string("general.architecture", "llama")
        .build();
    let err = parse(&bytes)
        .and_then(|h| h.model_facts())
        .expect_err("no facts");
    assert!(err.to_string().contains("llama.embedding_length"), "{err}");
}

/// The models directory: `XNAI_MODELS_DIR`, else the workspace's `models/`.
pub(crate) fn models_dir() -> PathBuf {
    std::env::var_os("XNAI_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

#[test]
fn reads_real_gemma_header_when_present() {
    let path = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    if !path.exists() {
        eprintln!(
            "skipping: {} absent (run scripts/fetch-models.sh)",
            path.display()
        );
        return;
    }
    let h = GgufHeader::read_path(&path).expect("real header");
    let f = h.model_facts().expect("facts");
    assert_eq!(f.architecture, "gemma3");
    assert_eq!(f.embedding_length, 640);
    assert_eq!(f.block_count, 18);
    assert_eq!(f.head_count_kv, 1);
    assert_eq!(f.key_length, 256);
    assert_eq!(f.vocab_size, 262_144);
    assert_eq!(f.file_type.as_deref(), Some("Q4_K_M"));
    assert_eq!(f.file_bytes, 253_113_024);
    assert!(h.tensor_data_bytes > 200_000_000 && h.tensor_data_bytes < f.file_bytes);
}
