//! [`RetrievalIndex`]: documents, their chunks, the vector and BM25 indexes over the chunks,
//! and search in three modes. Every change is a [`Mutation`] applied in order, so the owner can
//! log mutations and replay them after a restart to reach the same index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chunk::{ChunkParams, chunk_text};
use crate::error::{Result, RetrievalError};
use crate::fuse::{RRF_K, reciprocal_rank_fusion};
use crate::lexical::Lexical;
use crate::vector::{HnswParams, VectorIndex};

/// How the index cuts documents and builds its graph.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct IndexParams {
    /// Chunk size and overlap in words.
    pub chunk: ChunkParams,
    /// HNSW parameters.
    pub hnsw: HnswParams,
}

/// One chunk ready to index: its text and its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddedChunk {
    /// The chunk's text.
    pub text: String,
    /// Its embedding (normalised on insert).
    pub vector: Vec<f32>,
}

/// A document ready to index: id, metadata and embedded chunks (in document order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddedDoc {
    /// Caller's id; adding an id again replaces the document.
    pub id: String,
    /// Free-form `key -> value` metadata, returned with hits (e.g. `source`).
    pub metadata: BTreeMap<String, String>,
    /// Chunks with embeddings.
    pub chunks: Vec<EmbeddedChunk>,
}

/// A change to the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    /// Add (or replace) documents.
    Add(Vec<EmbeddedDoc>),
    /// Delete documents by id (unknown ids are ignored).
    Delete(Vec<String>),
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Nearest embeddings (cosine similarity).
    Vector,
    /// BM25 over the words.
    Bm25,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

impl std::str::FromStr for SearchMode {
    type Err = RetrievalError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vector" => Ok(Self::Vector),
            "bm25" => Ok(Self::Bm25),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(RetrievalError::Invalid(format!(
                "unknown search mode {other:?}; modes: vector, bm25, hybrid"
            ))),
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkHit {
    /// The document's id.
    pub doc_id: String,
    /// Position of the chunk in its document (0-based).
    pub chunk: u32,
    /// The chunk's text.
    pub text: String,
    /// Cosine similarity (vector), BM25 score (bm25) or fused RRF score (hybrid).
    pub score: f64,
    /// The document's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Counts for `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Live documents.
    pub documents: usize,
    /// Live chunks.
    pub chunks: usize,
    /// Embedding dimensions (0 before the first add).
    pub dimensions: usize,
    /// Live chunks in the HNSW graph.
    pub graph_chunks: usize,
    /// Chunks scanned exactly (added since the last compaction).
    pub tail_chunks: usize,
    /// Chunk slots of deleted documents, dropped from the graph at the next compaction.
    pub deleted_chunks: usize,
    /// Chunking and graph parameters.
    pub params: IndexParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkEntry {
    doc: String,
    ordinal: u32,
    text: String,
    live: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DocEntry {
    metadata: BTreeMap<String, String>,
    chunks: Vec<u32>,
}

/// The persisted part of the index (BM25 is rebuilt from the texts).
#[derive(Serialize, Deserialize)]
pub struct Stored {
    params: IndexParams,
    dimensions: usize,
    docs: BTreeMap<String, DocEntry>,
    chunks: Vec<ChunkEntry>,
    vectors: VectorIndex,
}

/// The index. Not thread-safe: the actor owning it serialises calls.
pub struct RetrievalIndex {
    stored: Stored,
    lexical: Lexical,
}

impl RetrievalIndex {
    /// An empty index.
    pub fn new(params: IndexParams) -> Result<Self> {
        params.chunk.validate()?;
        Ok(Self::from_stored(Stored {
            params,
            dimensions: 0,
            docs: BTreeMap::new(),
            chunks: Vec::new(),
            vectors: VectorIndex::new(params.hnsw),
        }))
    }

    pub(crate) fn from_stored(stored: Stored) -> Self {
        let mut lexical = Lexical::new(stored.params.chunk.size);
        for (id, c) in stored.chunks.iter().enumerate() {
            if c.live {
                lexical.insert(id as u32, &c.text);
            }
        }
        Self { stored, lexical }
    }

    pub(crate) fn stored(&self) -> &Stored {
        &self.stored
    }

    /// The parameters.
    pub fn params(&self) -> IndexParams {
        self.stored.params
    }

    /// Cuts `text` into chunks with this index's parameters.
    pub fn chunk(&self, text: &str) -> Vec<String> {
        chunk_text(text, self.stored.params.chunk)
    }

    /// Applies one mutation. It is checked whole first: on error nothing changed.
    pub fn apply(&mut self, mutation: &Mutation) -> Result<()> {
        match mutation {
            Mutation::Add(docs) => {
                let mut dims = self.stored.dimensions;
                for doc in docs {
                    if doc.id.is_empty() {
                        return Err(RetrievalError::Invalid("a document has an empty id".into()));
                    }
                    for c in &doc.chunks {
                        if dims == 0 {
                            dims = c.vector.len();
                        }
                        if c.vector.len() != dims || dims == 0 {
                            return Err(RetrievalError::Dimension {
                                want: dims,
                                got: c.vector.len(),
                            });
                        }
                    }
                }
                self.stored.dimensions = dims;
                for doc in docs {
                    self.delete(&doc.id);
                    self.add(doc);
                }
            }
            Mutation::Delete(ids) => ids.iter().for_each(|id| self.delete(id)),
        }
        Ok(())
    }

    fn add(&mut self, doc: &EmbeddedDoc) {
        let mut ids = Vec::with_capacity(doc.chunks.len());
        for (ordinal, c) in doc.chunks.iter().enumerate() {
            let id = self.stored.vectors.push(c.vector.clone());
            self.stored.chunks.push(ChunkEntry {
                doc: doc.id.clone(),
                ordinal: ordinal as u32,
                text: c.text.clone(),
                live: true,
            });
            self.lexical.insert(id, &c.text);
            ids.push(id);
        }
        let entry = DocEntry {
            metadata: doc.metadata.clone(),
            chunks: ids,
        };
        self.stored.docs.insert(doc.id.clone(), entry);
    }

    fn delete(&mut self, doc_id: &str) {
        if let Some(doc) = self.stored.docs.remove(doc_id) {
            for id in doc.chunks {
                self.stored.chunks[id as usize].live = false;
                self.lexical.remove(id);
            }
        }
    }

    /// Rebuilds the HNSW graph over every live chunk (drops deleted ones, empties the tail)
    /// on `threads` threads (0: one per core). Run it before taking a snapshot, never while
    /// replaying a log. CPU-heavy: call it off an async runtime's threads.
    pub fn compact(&mut self, threads: usize) {
        let chunks = &self.stored.chunks;
        self.stored
            .vectors
            .rebuild(|id| chunks[id as usize].live, threads);
    }

    fn live(&self) -> impl Fn(u32) -> bool + '_ {
        |id| self.stored.chunks[id as usize].live
    }

    /// Searches: `vector` needs `query_vector` (the query's embedding), `bm25` the text,
    /// `hybrid` both (fusing the top `max(4k, 50)` of each). Best first.
    pub fn search(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<ChunkHit>> {
        let need_vector = || {
            query_vector.ok_or_else(|| {
                RetrievalError::Invalid(
                    "vector and hybrid search need the query's embedding".into(),
                )
            })
        };
        let dims = self.stored.dimensions;
        if let Some(v) = query_vector
            && dims != 0
            && v.len() != dims
        {
            return Err(RetrievalError::Dimension {
                want: dims,
                got: v.len(),
            });
        }
        let scored: Vec<(u32, f64)> = match mode {
            SearchMode::Vector => self.vector_hits(need_vector()?, k),
            SearchMode::Bm25 => self.bm25_hits(query, k),
            SearchMode::Hybrid => {
                let depth = (4 * k).max(50);
                let ids = |hits: Vec<(u32, f64)>| hits.into_iter().map(|h| h.0).collect();
                let lists = [
                    ids(self.vector_hits(need_vector()?, depth)),
                    ids(self.bm25_hits(query, depth)),
                ];
                let mut fused = reciprocal_rank_fusion(&lists, RRF_K);
                fused.truncate(k);
                fused
            }
        };
        Ok(scored
            .into_iter()
            .map(|(id, score)| self.hit(id, score))
            .collect())
    }

    fn vector_hits(&self, query: &[f32], k: usize) -> Vec<(u32, f64)> {
        let mut q = query.to_vec();
        crate::vector::normalize(&mut q);
        let hits = self.stored.vectors.search(&q, k, self.live());
        hits.into_iter().map(|(id, s)| (id, s as f64)).collect()
    }

    fn bm25_hits(&self, query: &str, k: usize) -> Vec<(u32, f64)> {
        let hits = self.lexical.search(query, k);
        hits.into_iter().map(|(id, s)| (id, s as f64)).collect()
    }

    /// Exact nearest chunks (full scan) as (doc id, chunk ordinal): the ground truth the
    /// benchmark measures the graph's recall against.
    pub fn exact_vector(&self, query: &[f32], k: usize) -> Vec<(String, u32)> {
        let mut q = query.to_vec();
        crate::vector::normalize(&mut q);
        let hits = self.stored.vectors.exact(&q, k, self.live());
        hits.into_iter().map(|(id, _)| self.key(id)).collect()
    }

    fn key(&self, id: u32) -> (String, u32) {
        let c = &self.stored.chunks[id as usize];
        (c.doc.clone(), c.ordinal)
    }

    fn hit(&self, id: u32, score: f64) -> ChunkHit {
        let c = &self.stored.chunks[id as usize];
        let metadata = self
            .stored
            .docs
            .get(&c.doc)
            .map(|d| d.metadata.clone())
            .unwrap_or_default();
        ChunkHit {
            doc_id: c.doc.clone(),
            chunk: c.ordinal,
            text: c.text.clone(),
            score,
            metadata,
        }
    }

    /// Counts and parameters.
    pub fn stats(&self) -> IndexStats {
        let live = self.stored.chunks.iter().filter(|c| c.live).count();
        let (graph, tail) = self.stored.vectors.graph_and_tail();
        IndexStats {
            documents: self.stored.docs.len(),
            chunks: live,
            dimensions: self.stored.dimensions,
            graph_chunks: graph,
            tail_chunks: tail,
            deleted_chunks: self.stored.chunks.len() - live,
            params: self.stored.params,
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
