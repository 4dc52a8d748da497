//! The vector side of the index: every chunk's unit-length embedding, an HNSW graph
//! (`instant-distance`) over the chunks that existed at the last [`VectorIndex::rebuild`], and
//! an exact scan over the chunks added since (the tail). The graph is only rebuilt when the
//! owner compacts (and then persisted whole), never while replaying logged mutations, so a
//! reloaded index has the same graph and gives the same answers.

use instant_distance::{Builder, HnswMap, Search};
use serde::{Deserialize, Serialize};

/// A unit-length embedding; distance is `1 - cosine similarity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit(pub Vec<f32>);

impl instant_distance::Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// Dot product (cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// HNSW build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Candidate list size while building (quality of the graph).
    pub ef_construction: usize,
    /// Candidate list size while searching (recall against speed); also the most hits one
    /// graph search returns.
    pub ef_search: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            ef_construction: 64,
            ef_search: 100,
            seed: 0x5eed,
        }
    }
}

/// Embeddings by chunk id, the graph over the older ones and the exactly scanned tail.
#[derive(Serialize, Deserialize)]
pub struct VectorIndex {
    params: HnswParams,
    vectors: Vec<Vec<f32>>,
    graph: Option<HnswMap<Unit, u32>>,
    /// Chunk ids below this are in the graph (or were deleted before it was built).
    graph_upto: u32,
    /// Chunks in the graph.
    graph_len: usize,
}

impl VectorIndex {
    /// An empty index.
    pub fn new(params: HnswParams) -> Self {
        Self {
            params,
            vectors: Vec::new(),
            graph: None,
            graph_upto: 0,
            graph_len: 0,
        }
    }

    /// Appends the embedding of the next chunk id (normalised); returns that id.
    pub fn push(&mut self, mut vector: Vec<f32>) -> u32 {
        normalize(&mut vector);
        self.vectors.push(vector);
        (self.vectors.len() - 1) as u32
    }

    /// Number of embeddings (live or not).
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether no embedding was ever added.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Chunks in the graph, and chunks in the exactly scanned tail.
    pub fn graph_and_tail(&self) -> (usize, usize) {
        (
            self.graph_len,
            self.vectors.len() - self.graph_upto as usize,
        )
    }

    /// Rebuilds the graph over every live chunk on `threads` threads (0: one per core); the
    /// tail becomes empty.
    pub fn rebuild(&mut self, live: impl Fn(u32) -> bool, threads: usize) {
        let ids: Vec<u32> = (0..self.vectors.len() as u32)
            .filter(|i| live(*i))
            .collect();
        self.graph_upto = self.vectors.len() as u32;
        self.graph_len = ids.len();
        if ids.is_empty() {
            self.graph = None;
            return;
        }
        let points = ids
            .iter()
            .map(|i| Unit(self.vectors[*i as usize].clone()))
            .collect();
        let builder = Builder::default()
            .ef_construction(self.params.ef_construction)
            .ef_search(self.params.ef_search)
            .seed(self.params.seed);
        // instant-distance builds on rayon; a pool of our own bounds the cores it takes.
        let map = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(|| builder.build(points, ids)),
            Err(_) => builder.build(points, ids),
        };
        self.graph = Some(map);
    }

    /// The `k` live chunks most similar to `query` (unit length), best first, as (id,
    /// cosine similarity): approximate over the graph, exact over the tail. Ties break on id.
    pub fn search(&self, query: &[f32], k: usize, live: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let mut hits = Vec::new();
        if let Some(graph) = &self.graph {
            let mut search = Search::default();
            let point = Unit(query.to_vec());
            for item in graph.search(&point, &mut search) {
                if live(*item.value) {
                    hits.push((*item.value, 1.0 - item.distance));
                    if hits.len() == k {
                        break;
                    }
                }
            }
        }
        for id in self.graph_upto..self.vectors.len() as u32 {
            if live(id) {
                hits.push((id, dot(query, &self.vectors[id as usize])));
            }
        }
        rank(hits, k)
    }

    /// The exact `k` nearest live chunks (a full scan): the ground truth for recall.
    pub fn exact(&self, query: &[f32], k: usize, live: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let hits = (0..self.vectors.len() as u32)
            .filter(|i| live(*i))
            .map(|i| (i, dot(query, &self.vectors[i as usize])))
            .collect();
        rank(hits, k)
    }
}

fn rank(mut hits: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u32, dim: usize) -> Vec<f32> {
        // A small deterministic generator: enough spread for a nearest-neighbour test.
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalize(&mut v);
        v
    }

    #[test]
    fn graph_and_tail_find_the_same_as_exact() {
        let mut index = VectorIndex::new(HnswParams::default());
        for i in 0..300 {
            index.push(unit(i, 16));
        }
        index.rebuild(|_| true, 0);
        for i in 300..320 {
            index.push(unit(i, 16));
        }
        assert_eq!(index.graph_and_tail(), (300, 20));
        let mut agree = 0;
        for q in 0..20 {
            let query = unit(1000 + q, 16);
            let approx: Vec<u32> = index
                .search(&query, 10, |_| true)
                .iter()
                .map(|h| h.0)
                .collect();
            let exact: Vec<u32> = index
                .exact(&query, 10, |_| true)
                .iter()
                .map(|h| h.0)
                .collect();
            agree += approx.iter().filter(|id| exact.contains(id)).count();
        }
        assert!(agree >= 190, "recall {agree}/200");
        let own = index.search(&unit(310, 16), 1, |_| true);
        assert_eq!(own[0].0, 310);
        assert!((own[0].1 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn dead_chunks_are_never_returned() {
        let mut index = VectorIndex::new(HnswParams::default());
        for i in 0..50 {
            index.push(unit(i, 8));
        }
        index.rebuild(|_| true, 0);
        let hits = index.search(&unit(7, 8), 5, |id| id != 7);
        assert!(hits.iter().all(|h| h.0 != 7));
        assert_eq!(hits.len(), 5);
    }
}
