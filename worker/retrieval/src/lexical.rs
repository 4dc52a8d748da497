//! The BM25 side of the index, on the `bm25` crate (English stemming and stop words, Unicode
//! normalisation). Not persisted: it is rebuilt from the chunk texts on load, which costs no
//! embedding. The average chunk length BM25 normalises by is fixed from the chunk size rather
//! than refitted as documents arrive, so scores do not drift and a reloaded index scores
//! exactly as before.

use bm25::{DefaultTokenizer, Embedder, EmbedderBuilder, Language, Scorer};

/// Terms per chunk after stop-word removal, as a fraction of its words (English prose).
const TERMS_PER_WORD: f32 = 0.6;

/// A BM25 scorer over chunk ids.
pub struct Lexical {
    embedder: Embedder<u32, DefaultTokenizer>,
    scorer: Scorer<u32>,
}

impl Lexical {
    /// An empty index for chunks of about `chunk_words` words.
    pub fn new(chunk_words: usize) -> Self {
        let avgdl = (chunk_words as f32 * TERMS_PER_WORD).max(1.0);
        let embedder = EmbedderBuilder::<u32, DefaultTokenizer>::with_avgdl(avgdl)
            .tokenizer(DefaultTokenizer::new(Language::English))
            .build();
        Self {
            embedder,
            scorer: Scorer::new(),
        }
    }

    /// Indexes chunk `id`'s text.
    pub fn insert(&mut self, id: u32, text: &str) {
        self.scorer.upsert(&id, self.embedder.embed(text));
    }

    /// Forgets chunk `id`.
    pub fn remove(&mut self, id: u32) {
        self.scorer.remove(&id);
    }

    /// The `k` best chunks for `query`, best first, as (id, BM25 score); ties break on id.
    pub fn search(&self, query: &str, k: usize) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = self
            .scorer
            .matches(&self.embedder.embed(query))
            .into_iter()
            .map(|d| (d.id, d.score))
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_stemmed_words_and_forgets() {
        let mut lex = Lexical::new(50);
        lex.insert(0, "The raft consensus algorithm replicates logs");
        lex.insert(1, "Llamas are domesticated South American camelids");
        lex.insert(2, "A log is replicated to a majority of servers");
        let hits = lex.search("replicating the log", 10);
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.0 != 1));
        assert_eq!(lex.search("llama", 1)[0].0, 1);
        lex.remove(1);
        assert!(lex.search("llama", 1).is_empty());
    }
}
