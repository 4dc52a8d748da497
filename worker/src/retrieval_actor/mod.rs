//! The built-in actor class `retrieval`: a document index (chunks, HNSW vectors, BM25) that
//! embeds through an `inference` actor (`embedder=NAME`) or a model file on the worker
//! (`model=PATH`), answers `vector`, `bm25` and `hybrid` (reciprocal rank fusion) searches, and
//! stores every change as cluster objects so a restarted actor, on any worker, reloads the
//! index without re-embedding ([`state`]). Like `inference`, its methods are async, so
//! [`RetrievalActors`] is a [`crate::hosts::ClassHost`] of its own (`host`).
//!
//! Constructor ([`params::constructor`]): `embedder=NAME | model=PATH`, `chunk=WORDS`
//! (120), `overlap=WORDS` (30), `ef_construction=N` (64), `ef_search=N` (100), `replicas=N`
//! (2: workers holding each segment). Methods (JSON replies): `add` (JSON
//! `[{"id","text","metadata"}]`), `add_embedded` (chunks with vectors), `search` (JSON
//! `{"query","k","mode"}` or words with `k=` `mode=`), `delete` (ids), `stats`.

pub mod cluster;
mod host;
pub mod params;
pub mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde_json::json;
use xnai_proto::ids::ActorId;

use crate::actors::MethodResult;
use crate::error::{Result, WorkerError};
use cluster::Cluster;
use state::IndexActor;

/// Name of the class in the worker's registry.
pub const CLASS: &str = "retrieval";
/// Methods of the class, for error messages.
pub const METHODS: &str = "add, add_embedded, search, delete, stats";

type Slot = Arc<tokio::sync::Mutex<IndexActor>>;

/// The retrieval actors of this worker. Thread-safe; share it behind an `Arc`.
pub struct RetrievalActors {
    cluster: Arc<dyn Cluster>,
    actors: RwLock<HashMap<ActorId, Slot>>,
    /// Serialises constructions, so a retried StartActor never loads an index twice.
    starting: tokio::sync::Mutex<()>,
}

impl RetrievalActors {
    /// Actors reaching embeddings and object storage through `cluster`.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster,
            actors: RwLock::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ActorId, Slot>> {
        self.actors.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ActorId, Slot>> {
        self.actors.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether actor `id` is a retrieval actor hosted here.
    pub fn contains(&self, id: &ActorId) -> bool {
        self.read().contains_key(id)
    }

    /// Constructs actor `id` from its `key=value` words, reloading its stored index.
    /// `Err(text)` is a constructor (application) error. Starting a live actor is a no-op.
    pub async fn start(&self, id: ActorId, words: &[Bytes]) -> std::result::Result<(), String> {
        let _one_at_a_time = self.starting.lock().await;
        if self.contains(&id) {
            return Ok(());
        }
        let c = params::constructor(words)?;
        let actor = IndexActor::open(
            id,
            c.source,
            c.params,
            c.replicas,
            Arc::clone(&self.cluster),
        )
        .await?;
        tracing::info!(actor_id = %id, "retrieval actor started");
        self.write()
            .insert(id, Arc::new(tokio::sync::Mutex::new(actor)));
        Ok(())
    }

    /// Stops actor `id` (its stored index stays). Returns whether it was here.
    pub fn stop(&self, id: &ActorId) -> bool {
        self.write().remove(id).is_some()
    }

    /// Calls `method`; calls to one actor run one at a time, in arrival order.
    pub async fn call(&self, id: ActorId, method: &str, args: Vec<Bytes>) -> Result<MethodResult> {
        let slot = self
            .read()
            .get(&id)
            .cloned()
            .ok_or(WorkerError::ActorNotFound(id))?;
        let mut actor = slot.lock().await;
        Ok(run(&mut actor, method, &args).await)
    }
}

/// Registers the task function `embed MODEL_PATH TEXTS_JSON`: embeds a JSON array of texts
/// with the GGUF model at that path on the worker (loaded once through the worker's model
/// cache) and returns the JSON array of vectors. `xnai index add` spreads its embedding work
/// over the workers as these tasks.
pub fn register_embed_function(
    functions: &mut crate::functions::FunctionRegistry,
    local: Arc<cluster::LocalEmbedders>,
) {
    functions.register(EMBED_FUNCTION, move |args: Vec<Bytes>| {
        let local = Arc::clone(&local);
        async move {
            let [path, texts] = args.as_slice() else {
                return Err(format!(
                    "{EMBED_FUNCTION}: give MODEL_PATH and a JSON array of texts"
                ));
            };
            let path = std::str::from_utf8(path)
                .map_err(|_| format!("{EMBED_FUNCTION}: the model path is not UTF-8"))?;
            let texts: Vec<String> = serde_json::from_slice(texts)
                .map_err(|e| format!("{EMBED_FUNCTION}: bad JSON texts: {e}"))?;
            let vectors = local.embed(&path.into(), texts).await?;
            encode(&vectors)
        }
    });
}

/// Name of the embedding task function.
pub const EMBED_FUNCTION: &str = "embed";

fn encode<T: serde::Serialize>(value: &T) -> MethodResult {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode the reply: {e}"))
}

async fn run(actor: &mut IndexActor, method: &str, args: &[Bytes]) -> MethodResult {
    match method {
        "add" => {
            let (docs, chunks) = actor.add(params::add(args)?).await?;
            encode(&json!({ "documents": docs, "chunks": chunks }))
        }
        "add_embedded" => {
            let (docs, chunks) = actor.add_embedded(params::add_embedded(args)?).await?;
            encode(&json!({ "documents": docs, "chunks": chunks }))
        }
        "search" => {
            let req = params::search(args)?;
            encode(&actor.search(&req.query, req.k, req.mode).await?)
        }
        "delete" => {
            let ids = params::delete(args)?;
            let n = ids.len();
            actor.delete(ids).await?;
            encode(&json!({ "deleted": n }))
        }
        "stats" => encode(&actor.stats()),
        other => Err(format!(
            "retrieval has no method {other:?}; methods: {METHODS}"
        )),
    }
}
