//! What a retrieval actor needs from the world, behind one trait ([`Cluster`]) so the actor's
//! logic is tested with a fake: embeddings (from a named `inference` actor anywhere in the
//! cluster, or from a GGUF model loaded on this worker) and index segments stored as cluster
//! objects under deterministic ids, replicated on several workers. [`ClusterLink`] is the real
//! one, on the SDK ([`xnai_sdk::Client`]) connected lazily to the heads with the token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::OnceCell;
use xnai_inference::{EngineConfig, EngineLoader, InferenceEngine};
use xnai_proto::ids::ObjectId;
use xnai_sdk::{Client, ClientConfig, ObjectRef, ObjectState};

/// Where embeddings come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingSource {
    /// The `inference` actor of this name (`embed` method), wherever it runs.
    Actor(String),
    /// A GGUF embedding model file on this worker, loaded through the worker's model cache.
    Model(PathBuf),
}

/// Errors are sentences for the caller (the actor's application errors).
pub type CallResult<T> = std::result::Result<T, String>;

/// The actor's boundary. Thread-safe.
pub trait Cluster: Send + Sync + 'static {
    /// Embeds `texts` (unit vectors, one per text).
    fn embed<'a>(
        &'a self,
        source: &'a EmbeddingSource,
        texts: Vec<String>,
    ) -> BoxFuture<'a, CallResult<Vec<Vec<f32>>>>;
    /// Whether put object `id` exists (ready). A lost one is an error, not absent.
    fn exists(&self, id: ObjectId) -> BoxFuture<'_, CallResult<bool>>;
    /// The bytes of object `id`.
    fn fetch(&self, id: ObjectId) -> BoxFuture<'_, CallResult<Bytes>>;
    /// Stores `data` as put object `id` on up to `replicas` workers.
    fn store(&self, id: ObjectId, data: Bytes, replicas: usize) -> BoxFuture<'_, CallResult<()>>;
    /// Frees objects (best effort).
    fn free(&self, ids: Vec<ObjectId>) -> BoxFuture<'_, CallResult<()>>;
}

/// Engines for embedding with a model file on this worker, one per path, sharing the worker's
/// model cache (a model file is resident once however many actors and tasks use it).
pub struct LocalEmbedders {
    loader: Arc<dyn EngineLoader>,
    engines: tokio::sync::Mutex<HashMap<PathBuf, Arc<dyn InferenceEngine>>>,
}

impl LocalEmbedders {
    /// Embedders loading through `loader` (the worker's model cache).
    pub fn new(loader: Arc<dyn EngineLoader>) -> Self {
        Self {
            loader,
            engines: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Embeds `texts` with the model at `path` (loaded on first use: 1 slot of 1 thread, so
    /// embedding tasks on a busy worker leave a core for its runtime; 512-token texts).
    pub async fn embed(&self, path: &PathBuf, texts: Vec<String>) -> CallResult<Vec<Vec<f32>>> {
        let engine = {
            let mut engines = self.engines.lock().await;
            match engines.get(path) {
                Some(e) => Arc::clone(e),
                None => {
                    let mut config = EngineConfig::new(path.clone());
                    config.embeddings = true;
                    config.ctx = 512;
                    config.threads = 1;
                    config.queue_capacity = 1024;
                    let e =
                        self.loader.load(config).await.map_err(|e| {
                            format!("loading embedding model {}: {e}", path.display())
                        })?;
                    engines.insert(path.clone(), Arc::clone(&e));
                    e
                }
            }
        };
        engine
            .embed(texts)
            .await
            .map_err(|e| format!("embedding: {e}"))
    }
}

/// The real [`Cluster`]: the SDK for objects and actors, [`LocalEmbedders`] for model files.
pub struct ClusterLink {
    config: ClientConfig,
    client: OnceCell<Client>,
    local: Arc<LocalEmbedders>,
    actors: Mutex<HashMap<String, xnai_sdk::ActorHandle>>,
}

/// How long a segment fetch may wait.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

impl ClusterLink {
    /// A link to the cluster of these heads, with this token; connects on first use.
    pub fn new(heads: Vec<String>, token: String, local: Arc<LocalEmbedders>) -> Self {
        let mut config = ClientConfig::new(heads, token);
        // Segments must outlive any session: they are freed explicitly when superseded.
        config.session_lease = None;
        Self {
            config,
            client: OnceCell::new(),
            local,
            actors: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self) -> CallResult<&Client> {
        self.client
            .get_or_try_init(|| Client::connect(self.config.clone()))
            .await
            .map_err(|e| format!("cannot reach the head: {e}"))
    }

    async fn actor(&self, name: &str) -> CallResult<xnai_sdk::ActorHandle> {
        if let Some(h) = self.lock_actors().get(name) {
            return Ok(h.clone());
        }
        let client = self.client().await?;
        let handle = client
            .get_actor(name)
            .await
            .map_err(|e| format!("embedding actor {name:?}: {e}"))?;
        self.lock_actors().insert(name.to_string(), handle.clone());
        Ok(handle)
    }

    fn lock_actors(&self) -> std::sync::MutexGuard<'_, HashMap<String, xnai_sdk::ActorHandle>> {
        self.actors.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Cluster for ClusterLink {
    fn embed<'a>(
        &'a self,
        source: &'a EmbeddingSource,
        texts: Vec<String>,
    ) -> BoxFuture<'a, CallResult<Vec<Vec<f32>>>> {
        Box::pin(async move {
            match source {
                EmbeddingSource::Model(path) => self.local.embed(path, texts).await,
                EmbeddingSource::Actor(name) => {
                    let handle = self.actor(name).await?;
                    let client = self.client().await?;
                    match client.embed(&handle, &texts).await {
                        Ok(v) => Ok(v),
                        Err(e) => {
                            // The actor may have been restarted elsewhere: look it up next time.
                            self.lock_actors().remove(name);
                            Err(format!("embedding actor {name:?}: {e}"))
                        }
                    }
                }
            }
        })
    }

    fn exists(&self, id: ObjectId) -> BoxFuture<'_, CallResult<bool>> {
        Box::pin(async move {
            let client = self.client().await?;
            match client.object_info(&ObjectRef::new(id)).await {
                Ok(info) => match info.state {
                    ObjectState::Ready => Ok(true),
                    ObjectState::Lost => Err(format!(
                        "index segment {id} is lost ({}); the index cannot be reloaded whole",
                        info.error
                    )),
                    _ => Ok(false),
                },
                Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(false),
                Err(e) => Err(format!("looking up index segment {id}: {e}")),
            }
        })
    }

    fn fetch(&self, id: ObjectId) -> BoxFuture<'_, CallResult<Bytes>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .get(&ObjectRef::new(id), FETCH_TIMEOUT)
                .await
                .map_err(|e| format!("reading index segment {id}: {e}"))
        })
    }

    fn store(&self, id: ObjectId, data: Bytes, replicas: usize) -> BoxFuture<'_, CallResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .put_replicated(id, data, replicas)
                .await
                .map(|_| ())
                .map_err(|e| format!("storing index segment {id}: {e}"))
        })
    }

    fn free(&self, ids: Vec<ObjectId>) -> BoxFuture<'_, CallResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            let refs: Vec<ObjectRef> = ids.into_iter().map(ObjectRef::new).collect();
            client
                .free(&refs)
                .await
                .map_err(|e| format!("freeing old index segments: {e}"))
        })
    }
}
