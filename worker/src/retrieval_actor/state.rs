//! One retrieval actor's state: its index, where its embeddings come from, and the numbered
//! chain of segments that stores the index in the cluster ([`xnai_retrieval::persist`]). Every
//! change is stored before it is acknowledged; on construction the actor reloads whatever its
//! earlier incarnation stored (same actor id, any worker) without embedding anything again.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use xnai_proto::ids::{ActorId, ObjectId};
use xnai_retrieval::persist::{self, LoadPlan, Segment};
use xnai_retrieval::{
    ChunkHit, EmbeddedChunk, EmbeddedDoc, IndexParams, IndexStats, Mutation, RetrievalIndex,
    SearchMode,
};

use super::cluster::{CallResult, Cluster, EmbeddingSource};
use super::params::NewDoc;

/// Texts per embedding call.
pub const EMBED_BATCH: usize = 32;

/// What `stats` answers: the index's counts plus where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct ActorStats {
    /// Index counts and parameters.
    #[serde(flatten)]
    pub index: IndexStats,
    /// Where embeddings come from.
    pub embedder: EmbeddingSource,
    /// The number the next stored mutation gets (= mutations stored so far).
    pub segments: u64,
    /// The snapshot this incarnation loaded, if any.
    pub loaded_snapshot: Option<u64>,
    /// Logged mutations this incarnation replayed on load.
    pub loaded_logs: usize,
    /// Texts this incarnation embedded (chunks of `add`, and queries): zero after a reload
    /// that embedded nothing.
    pub texts_embedded: u64,
}

/// A live retrieval actor. Not thread-safe: the host serialises its calls.
pub struct IndexActor {
    owner: ActorId,
    source: EmbeddingSource,
    replicas: usize,
    cluster: Arc<dyn Cluster>,
    index: RetrievalIndex,
    params: IndexParams,
    next: u64,
    loaded: LoadPlan,
    texts_embedded: u64,
}

/// Threads for an HNSW build: all cores but one (at least one).
fn build_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

fn segment_id(owner: ActorId, seq: u64) -> ObjectId {
    ObjectId(persist::segment_object_id(&owner.0.to_be_bytes(), seq))
}

impl IndexActor {
    /// Opens actor `owner`'s index: reloads the stored segments, or starts empty.
    pub async fn open(
        owner: ActorId,
        source: EmbeddingSource,
        params: IndexParams,
        replicas: usize,
        cluster: Arc<dyn Cluster>,
    ) -> CallResult<Self> {
        let fresh = RetrievalIndex::new(params).map_err(|e| format!("retrieval: {e}"))?;
        let mut actor = Self {
            owner,
            source,
            replicas,
            cluster,
            index: fresh,
            params,
            next: 0,
            loaded: LoadPlan {
                snapshot: None,
                logs: Vec::new(),
                next: 0,
            },
            texts_embedded: 0,
        };
        actor.reload().await?;
        Ok(actor)
    }

    /// Rebuilds the in-memory index from the stored segments.
    async fn reload(&mut self) -> CallResult<()> {
        let cluster = Arc::clone(&self.cluster);
        let owner = self.owner;
        let plan = LoadPlan::probe(|seq| cluster.exists(segment_id(owner, seq))).await?;
        let mut index = match plan.snapshot {
            Some(seq) => match self.segment(seq).await? {
                Segment::Snapshot(index) => *index,
                Segment::Log(_) => return Err(format!("index segment {seq} is not a snapshot")),
            },
            None => RetrievalIndex::new(self.params).map_err(|e| format!("retrieval: {e}"))?,
        };
        for seq in &plan.logs {
            match self.segment(*seq).await? {
                Segment::Log(m) => index
                    .apply(&m)
                    .map_err(|e| format!("replaying {seq}: {e}"))?,
                Segment::Snapshot(_) => return Err(format!("index segment {seq} is not a log")),
            }
        }
        tracing::info!(
            actor_id = %self.owner, snapshot = ?plan.snapshot, logs = plan.logs.len(),
            chunks = index.stats().chunks, "retrieval index loaded"
        );
        self.index = index;
        self.next = plan.next;
        self.loaded = plan;
        Ok(())
    }

    async fn segment(&self, seq: u64) -> CallResult<Segment> {
        let bytes = self.cluster.fetch(segment_id(self.owner, seq)).await?;
        persist::decode(&bytes).map_err(|e| format!("index segment {seq}: {e}"))
    }

    /// Applies `m`, then stores it as segment `next` (a snapshot at powers of two, after which
    /// older segments are freed). If storing fails the index is reloaded from what is stored,
    /// so memory never runs ahead of the cluster.
    async fn mutate(&mut self, m: Mutation) -> CallResult<()> {
        self.index
            .apply(&m)
            .map_err(|e| format!("retrieval: {e}"))?;
        let seq = self.next;
        let snapshot = persist::is_snapshot_seq(seq);
        let encoded = if snapshot {
            // The graph build takes seconds on big indexes: off the runtime's threads, and
            // leaving a core free so heartbeats and other calls keep flowing.
            let fresh = RetrievalIndex::new(self.params).map_err(|e| format!("retrieval: {e}"))?;
            let mut index = std::mem::replace(&mut self.index, fresh);
            let threads = build_threads();
            let built = tokio::task::spawn_blocking(move || {
                index.compact(threads);
                let bytes = persist::encode_snapshot(&index);
                (index, bytes)
            })
            .await;
            match built {
                Ok((index, bytes)) => {
                    self.index = index;
                    bytes
                }
                Err(e) => {
                    self.reload().await?;
                    return Err(format!("retrieval: compaction failed: {e}"));
                }
            }
        } else {
            persist::encode_log(&m)
        };
        let stored = match encoded {
            Ok(bytes) => {
                let id = segment_id(self.owner, seq);
                self.cluster
                    .store(id, Bytes::from(bytes), self.replicas)
                    .await
            }
            Err(e) => Err(format!("retrieval: {e}")),
        };
        if let Err(e) = stored {
            tracing::warn!(actor_id = %self.owner, seq, "storing index segment failed: {e}");
            self.reload().await?;
            return Err(e);
        }
        self.next = seq + 1;
        if snapshot {
            // Segments from the previous snapshot (seq / 2) on are now superseded; the ones
            // before it were freed when it was stored.
            let old = (seq / 2..seq).map(|s| segment_id(self.owner, s)).collect();
            if let Err(e) = self.cluster.free(old).await {
                tracing::warn!(actor_id = %self.owner, "{e}");
            }
        }
        Ok(())
    }

    async fn embed(&mut self, texts: Vec<String>) -> CallResult<Vec<Vec<f32>>> {
        let n = texts.len();
        let vectors = self.cluster.embed(&self.source, texts).await?;
        if vectors.len() != n {
            return Err(format!(
                "the embedder returned {} vectors for {n} texts",
                vectors.len()
            ));
        }
        self.texts_embedded += n as u64;
        Ok(vectors)
    }

    /// `add`: chunks each document, embeds the chunks in batches, stores one mutation.
    /// Returns (documents, chunks) added.
    pub async fn add(&mut self, docs: Vec<NewDoc>) -> CallResult<(usize, usize)> {
        let mut embedded = Vec::with_capacity(docs.len());
        let mut total = 0;
        for doc in docs {
            let texts = self.index.chunk(&doc.text);
            let mut chunks = Vec::with_capacity(texts.len());
            for batch in texts.chunks(EMBED_BATCH) {
                let vectors = self.embed(batch.to_vec()).await?;
                for (text, vector) in batch.iter().zip(vectors) {
                    chunks.push(EmbeddedChunk {
                        text: text.clone(),
                        vector,
                    });
                }
            }
            total += chunks.len();
            embedded.push(EmbeddedDoc {
                id: doc.id,
                metadata: doc.metadata,
                chunks,
            });
        }
        let n = embedded.len();
        self.mutate(Mutation::Add(embedded)).await?;
        Ok((n, total))
    }

    /// `add_embedded`: stores documents whose chunks were embedded elsewhere (the CLI's
    /// embedding tasks). Returns (documents, chunks) added.
    pub async fn add_embedded(&mut self, docs: Vec<EmbeddedDoc>) -> CallResult<(usize, usize)> {
        let chunks = docs.iter().map(|d| d.chunks.len()).sum();
        let n = docs.len();
        self.mutate(Mutation::Add(docs)).await?;
        Ok((n, chunks))
    }

    /// `delete`: removes documents by id.
    pub async fn delete(&mut self, ids: Vec<String>) -> CallResult<()> {
        self.mutate(Mutation::Delete(ids)).await
    }

    /// `search`: embeds the query unless the mode is `bm25`, then searches.
    pub async fn search(
        &mut self,
        query: &str,
        k: usize,
        mode: SearchMode,
    ) -> CallResult<Vec<ChunkHit>> {
        let vector = match mode {
            SearchMode::Bm25 => None,
            _ => self.embed(vec![query.to_string()]).await?.pop(),
        };
        self.index
            .search(query, vector.as_deref(), k, mode)
            .map_err(|e| format!("search: {e}"))
    }

    /// `stats`.
    pub fn stats(&self) -> ActorStats {
        ActorStats {
            index: self.index.stats(),
            embedder: self.source.clone(),
            segments: self.next,
            loaded_snapshot: self.loaded.snapshot,
            loaded_logs: self.loaded.logs.len(),
            texts_embedded: self.texts_embedded,
        }
    }
}
