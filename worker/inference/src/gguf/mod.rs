//! Reads a GGUF file's header in pure Rust (no llama.cpp): version, metadata and tensor table,
//! so the client (`xnai plan`) and the head can size a model without loading it. Robust to
//! garbage: a truncated or foreign file gives an error, lengths are capped, nothing panics.

mod ggml_type;
mod reader;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use serde::Serialize;

pub use ggml_type::{file_type_name, pooling_type_name, tensor_bytes};
use reader::Reader;

use crate::error::{InferenceError, Result};

/// One metadata value. Integers are widened; long arrays keep only their length.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// Any unsigned integer type.
    U64(u64),
    /// Any signed integer type.
    I64(i64),
    /// f32 or f64.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array: its length, and its items when numeric and at most
    /// [`reader::MAX_KEPT_ARRAY`] long.
    Array {
        /// Number of elements.
        len: u64,
        /// The elements, if kept.
        items: Option<Vec<MetaValue>>,
    },
}

impl MetaValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::U64(v) => Some(*v),
            Self::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The parsed header of a GGUF file.
#[derive(Debug, Clone, Serialize)]
pub struct GgufHeader {
    /// GGUF format version (2 or 3).
    pub version: u32,
    /// Number of tensors.
    pub tensor_count: u64,
    /// All metadata key/values, sorted by key.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Byte offset where tensor data begins (aligned).
    pub data_offset: u64,
    /// Bytes of tensor data: the sum of every tensor's size when all tensor types are known,
    /// otherwise the file length minus `data_offset`.
    pub tensor_data_bytes: u64,
    /// Length of the file.
    pub file_bytes: u64,
}

impl GgufHeader {
    /// Reads the header of the GGUF file at `path`.
    pub fn read_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| InferenceError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| InferenceError::io(path, e))?
            .len();
        Self::read(BufReader::with_capacity(1 << 16, file), len).map_err(|e| match e {
            InferenceError::NotGguf { magic, .. } => InferenceError::NotGguf {
                path: path.to_path_buf(),
                magic,
            },
            other => other,
        })
    }

    /// Reads a GGUF header from `source`, positioned at the start of a file `len` bytes long.
    pub fn read<R: Read + Seek>(source: R, len: u64) -> Result<Self> {
        let mut r = Reader::new(source, len);
        let magic = r.bytes::<4>("magic").map_err(|_| InferenceError::NotGguf {
            path: "<input>".into(),
            magic: Vec::new(),
        })?;
        if &magic != b"GGUF" {
            return Err(InferenceError::NotGguf {
                path: "<input>".into(),
                magic: magic.to_vec(),
            });
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(InferenceError::UnsupportedGgufVersion(version));
        }
        // A tensor info takes at least 8 (name length) + 4 + 4 + 8 bytes.
        let tensor_count = r.count(24, "tensor count")?;
        // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
        let kv_count = r.count(13, "metadata count")?;
        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            let key = r.string(&format!("metadata key {i}"))?;
            let ty = r.u32(&format!("type of {key}"))?;
            let value = r.value(ty, &key)?;
            metadata.insert(key, value);
        }
        let mut known_bytes: Option<u64> = Some(0);
        for i in 0..tensor_count {
            let name = r.string(&format!("tensor {i} name"))?;
            let n_dims = r.u32(&format!("dimensions of {name}"))?;
            if n_dims > 8 {
                return Err(InferenceError::Malformed(format!(
                    "tensor {name} has {n_dims} dimensions"
                )));
            }
            let mut elements: u64 = 1;
            for _ in 0..n_dims {
                let dim = r.u64(&format!("shape of {name}"))?;
                elements = elements.checked_mul(dim).ok_or_else(|| {
                    InferenceError::Malformed(format!("tensor {name} element count overflows"))
                })?;
            }
            let ty = r.u32(&format!("type of {name}"))?;
            let _offset = r.u64(&format!("offset of {name}"))?;
            known_bytes = known_bytes
                .zip(tensor_bytes(ty, elements))
                .and_then(|(sum, b)| sum.checked_add(b));
        }
        let alignment = metadata
            .get("general.alignment")
            .and_then(MetaValue::as_u64)
            .filter(|a| *a > 0)
            .unwrap_or(32);
        let data_offset = r.pos().div_ceil(alignment).saturating_mul(alignment);
        let tensor_data_bytes = known_bytes.unwrap_or_else(|| len.saturating_sub(data_offset));
        if data_offset.saturating_add(tensor_data_bytes) > r.len() {
            return Err(InferenceError::Truncated {
                what: format!("tensor data of {tensor_data_bytes} bytes"),
                offset: data_offset,
            });
        }
        Ok(Self {
            version,
            tensor_count,
            metadata,
            data_offset,
            tensor_data_bytes,
            file_bytes: len,
        })
    }

    /// The value of metadata `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` (e.g. `gemma3`, `llama`, `bert`).
    pub fn architecture(&self) -> Result<&str> {
        self.get("general.architecture")
            .and_then(MetaValue::as_str)
            .ok_or_else(|| InferenceError::MissingMetadata("general.architecture".into()))
    }

    /// An integer under `{architecture}.{suffix}`; for per-layer arrays, their largest value.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let key = format!("{}.{suffix}", self.architecture().ok()?);
        match self.get(&key)? {
            MetaValue::Array {
                items: Some(items), ..
            } => items.iter().filter_map(MetaValue::as_u64).max(),
            other => other.as_u64(),
        }
    }

    /// Like [`Self::arch_u64`] but the key is required.
    pub fn require_arch_u64(&self, suffix: &str) -> Result<u64> {
        self.arch_u64(suffix).ok_or_else(|| {
            let arch = self.architecture().unwrap_or("<arch>");
            InferenceError::MissingMetadata(format!("{arch}.{suffix}"))
        })
    }

    /// The facts about the model that sizing and `info` need.
    pub fn model_facts(&self) -> Result<ModelFacts> {
        let n_embd = self.require_arch_u64("embedding_length")?;
        let n_head = self.require_arch_u64("attention.head_count")?;
        let n_head_kv = self.arch_u64("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = n_embd.checked_div(n_head).unwrap_or(0);
        let n_vocab =
            self.arch_u64("vocab_size")
                .or_else(|| match self.get("tokenizer.ggml.tokens") {
                    Some(MetaValue::Array { len, .. }) => Some(*len),
                    _ => None,
                });
        Ok(ModelFacts {
            architecture: self.architecture()?.to_string(),
            name: self
                .get("general.name")
                .and_then(MetaValue::as_str)
                .map(str::to_string),
            context_length: self.require_arch_u64("context_length")?,
            embedding_length: n_embd,
            block_count: self.require_arch_u64("block_count")?,
            head_count: n_head,
            head_count_kv: n_head_kv,
            key_length: self.arch_u64("attention.key_length").unwrap_or(head_dim),
            value_length: self.arch_u64("attention.value_length").unwrap_or(head_dim),
            feed_forward_length: self.arch_u64("feed_forward_length"),
            vocab_size: n_vocab.unwrap_or(0),
            file_type: self
                .get("general.file_type")
                .and_then(MetaValue::as_u64)
                .map(|t| file_type_name(t).to_string()),
            pooling_type: self
                .arch_u64("pooling_type")
                .map(|p| pooling_type_name(p).to_string()),
            sliding_window: self.arch_u64("attention.sliding_window"),
            tensor_count: self.tensor_count,
            tensor_data_bytes: self.tensor_data_bytes,
            file_bytes: self.file_bytes,
        })
    }
}

/// What a model is, from its GGUF header: the numbers memory planning and `info` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelFacts {
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if present.
    pub name: Option<String>,
    /// Context length the model was trained with.
    pub context_length: u64,
    /// Hidden size; also the embedding dimension.
    pub embedding_length: u64,
    /// Number of transformer layers.
    pub block_count: u64,
    /// Attention heads.
    pub head_count: u64,
    /// Key/value heads (grouped-query attention); equals `head_count` when absent.
    pub head_count_kv: u64,
    /// Size of one key head; `embedding_length / head_count` when absent.
    pub key_length: u64,
    /// Size of one value head; `embedding_length / head_count` when absent.
    pub value_length: u64,
    /// Feed-forward hidden size, if given.
    pub feed_forward_length: Option<u64>,
    /// Tokens in the vocabulary (0 if the file does not say).
    pub vocab_size: u64,
    /// Quantisation, e.g. `Q4_K_M`.
    pub file_type: Option<String>,
    /// Embedding pooling declared by the model (`mean`, `cls`, ...), if any.
    pub pooling_type: Option<String>,
    /// Sliding-window attention size, if the model uses it.
    pub sliding_window: Option<u64>,
    /// Number of tensors.
    pub tensor_count: u64,
    /// Bytes of weights.
    pub tensor_data_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
}
