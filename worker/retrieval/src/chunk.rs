//! Cutting documents into overlapping chunks of whole words. Chunks are what the index embeds
//! and returns; the overlap keeps a sentence that straddles a boundary whole in one of them.

use crate::error::{Result, RetrievalError};

/// How documents are cut: `size` words per chunk, consecutive chunks sharing `overlap` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkParams {
    /// Words per chunk (at least 1).
    pub size: usize,
    /// Words repeated from the end of one chunk at the start of the next (less than `size`).
    pub overlap: usize,
}

impl Default for ChunkParams {
    /// 120 words with 30 of overlap: about 160 MiniLM tokens, under its 256-token training length.
    fn default() -> Self {
        Self {
            size: 120,
            overlap: 30,
        }
    }
}

impl ChunkParams {
    /// Checks `size >= 1` and `overlap < size`.
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 || self.overlap >= self.size {
            return Err(RetrievalError::Invalid(format!(
                "chunk size must be at least 1 and overlap below it (size {}, overlap {})",
                self.size, self.overlap
            )));
        }
        Ok(())
    }
}

/// Cuts `text` into chunks of whole words (split on whitespace, joined by single spaces). An
/// empty or blank text gives no chunk; a text of at most `size` words gives exactly one.
pub fn chunk_text(text: &str, params: ChunkParams) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let step = params.size.saturating_sub(params.overlap).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + params.size).min(words.len());
        out.push(words[start..end].join(" "));
        if end == words.len() {
            return out;
        }
        start += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(size: usize, overlap: usize) -> ChunkParams {
        ChunkParams { size, overlap }
    }

    #[test]
    fn short_text_is_one_chunk_blank_is_none() {
        assert_eq!(chunk_text("  a  b\nc ", p(5, 1)), vec!["a b c"]);
        assert!(chunk_text(" \n\t", p(5, 1)).is_empty());
    }

    #[test]
    fn chunks_overlap_and_cover_every_word() {
        let text = (0..10).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
        let chunks = chunk_text(&text, p(4, 1));
        assert_eq!(chunks, vec!["0 1 2 3", "3 4 5 6", "6 7 8 9"]);
        let chunks = chunk_text(&text, p(4, 2));
        assert_eq!(chunks, vec!["0 1 2 3", "2 3 4 5", "4 5 6 7", "6 7 8 9"]);
    }

    #[test]
    fn params_are_checked() {
        assert!(p(4, 4).validate().is_err());
        assert!(p(0, 0).validate().is_err());
        assert!(ChunkParams::default().validate().is_ok());
    }
}
