//! The byte-level GGUF reader: little-endian scalars, length-prefixed strings and typed arrays,
//! bounded by the file length so garbage gives an error instead of a huge allocation or a panic.

use std::io::{Read, Seek, SeekFrom};

use super::MetaValue;
use crate::error::{InferenceError, Result};

/// Longest string the reader accepts (chat templates are a few KiB; tokens a few bytes).
pub const MAX_STRING_BYTES: u64 = 1 << 20;
/// Numeric arrays up to this length are kept; longer ones (and all string arrays) keep only
/// their length.
pub const MAX_KEPT_ARRAY: u64 = 4096;

/// A cursor over a GGUF file that knows where the file ends.
pub struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    /// Wraps `inner`, positioned at its start, of `len` bytes.
    pub fn new(inner: R, len: u64) -> Self {
        Self { inner, pos: 0, len }
    }

    /// Current byte offset.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Total length.
    pub fn len(&self) -> u64 {
        self.len
    }

    fn need(&self, n: u64, what: &str) -> Result<()> {
        if self.pos.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(InferenceError::Truncated {
                what: what.to_string(),
                offset: self.pos,
            });
        }
        Ok(())
    }

    /// Reads exactly `N` bytes.
    pub fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        self.need(N as u64, what)?;
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| InferenceError::Truncated {
                what: what.to_string(),
                offset: self.pos,
            })?;
        self.pos += N as u64;
        Ok(buf)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        self.need(n, what)?;
        let delta = i64::try_from(n).map_err(|_| InferenceError::Malformed(what.to_string()))?;
        self.inner
            .seek(SeekFrom::Current(delta))
            .map_err(|e| InferenceError::Malformed(format!("{what}: {e}")))?;
        self.pos += n;
        Ok(())
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// Reads a count and checks that `count * min_item_bytes` bytes can still follow.
    pub fn count(&mut self, min_item_bytes: u64, what: &str) -> Result<u64> {
        let n = self.u64(what)?;
        let remaining = self.len.saturating_sub(self.pos);
        if n.saturating_mul(min_item_bytes.max(1)) > remaining {
            return Err(InferenceError::Malformed(format!(
                "{what} is {n}, more than the {remaining} bytes left in the file could hold"
            )));
        }
        Ok(n)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        if n > MAX_STRING_BYTES {
            return Err(InferenceError::Malformed(format!(
                "{what}: string of {n} bytes (limit {MAX_STRING_BYTES})"
            )));
        }
        self.need(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| InferenceError::Truncated {
                what: what.to_string(),
                offset: self.pos,
            })?;
        self.pos += n;
        String::from_utf8(buf)
            .map_err(|_| InferenceError::Malformed(format!("{what}: string is not UTF-8")))
    }

    /// Skips a length-prefixed string without keeping it.
    fn skip_string(&mut self, what: &str) -> Result<()> {
        let n = self.u64(what)?;
        self.skip(n, what)
    }

    /// Reads one metadata value of GGUF type `ty`.
    pub fn value(&mut self, ty: u32, what: &str) -> Result<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U64(u64::from(self.bytes::<1>(what)?[0])),
            1 => MetaValue::I64(i64::from(self.bytes::<1>(what)?[0] as i8)),
            2 => MetaValue::U64(u64::from(u16::from_le_bytes(self.bytes(what)?))),
            3 => MetaValue::I64(i64::from(i16::from_le_bytes(self.bytes(what)?))),
            4 => MetaValue::U64(u64::from(self.u32(what)?)),
            5 => MetaValue::I64(i64::from(i32::from_le_bytes(self.bytes(what)?))),
            6 => MetaValue::F64(f64::from(f32::from_le_bytes(self.bytes(what)?))),
            7 => MetaValue::Bool(self.bytes::<1>(what)?[0] != 0),
            8 => MetaValue::String(self.string(what)?),
            9 => self.array(what)?,
            10 => MetaValue::U64(self.u64(what)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.bytes(what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.bytes(what)?)),
            other => {
                return Err(InferenceError::Malformed(format!(
                    "{what}: unknown value type {other}"
                )));
            }
        })
    }

    /// Reads an array; keeps short numeric arrays, only the length of others.
    fn array(&mut self, what: &str) -> Result<MetaValue> {
        let elem = self.u32(what)?;
        let item_bytes = fixed_size(elem);
        // Strings take at least their 8-byte length; nested arrays at least 12 bytes.
        let min_bytes = item_bytes.unwrap_or(if elem == 9 { 12 } else { 8 });
        let len = self.count(min_bytes, what)?;
        match (elem, item_bytes) {
            (8, _) => {
                for _ in 0..len {
                    self.skip_string(what)?;
                }
                Ok(MetaValue::Array { len, items: None })
            }
            (9, _) => Err(InferenceError::Malformed(format!(
                "{what}: nested arrays are not supported"
            ))),
            (_, Some(size)) if len > MAX_KEPT_ARRAY => {
                self.skip(len * size, what)?;
                Ok(MetaValue::Array { len, items: None })
            }
            (_, Some(_)) => {
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.value(elem, what)?);
                }
                Ok(MetaValue::Array {
                    len,
                    items: Some(items),
                })
            }
            (other, None) => Err(InferenceError::Malformed(format!(
                "{what}: unknown array element type {other}"
            ))),
        }
    }
}

/// Size in bytes of a fixed-size GGUF value type, `None` for strings, arrays and unknown types.
fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}
