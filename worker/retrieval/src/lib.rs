//! The retrieval index behind the worker's built-in `retrieval` actor: documents cut into
//! overlapping chunks ([`chunk`]), an approximate nearest-neighbour index over their embeddings
//! ([`vector`], HNSW from `instant-distance`), a BM25 index over their words ([`lexical`], the
//! `bm25` crate), hybrid search by reciprocal rank fusion ([`fuse`]), and the byte encoding of
//! snapshots and logged mutations the actor stores as cluster objects ([`persist`]).
//!
//! Pure logic: no I/O, no clock, no randomness (the HNSW build is seeded), so the same
//! mutations give the same index and the same answers on any worker.

pub mod chunk;
pub mod error;
pub mod eval;
pub mod fuse;
pub mod index;
pub mod lexical;
pub mod persist;
pub mod vector;

pub use error::{Result, RetrievalError};
pub use index::{
    ChunkHit, EmbeddedChunk, EmbeddedDoc, IndexParams, IndexStats, Mutation, RetrievalIndex,
    SearchMode,
};
