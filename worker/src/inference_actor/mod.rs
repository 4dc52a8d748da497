//! The built-in actor class `inference`: a llama.cpp model served by an [`InferenceEngine`]
//! (one context per slot, calls beyond the slots in a bounded FIFO queue). Unlike the actix
//! actors of [`crate::actors`] its methods are async and `generate` streams; [`InferenceActors`]
//! is a [`crate::hosts::ClassHost`] of its own (`host`), which the service dispatches to.
//!
//! Constructor (see [`params::constructor`]): `model=PATH` (a GGUF file on this worker) or an
//! object reference argument (a GGUF put into the cluster: pulled into this worker's tmpfs
//! arena and mapped by llama.cpp from there, so the weights sit in RAM once; the copy stays
//! pinned while the actor lives), plus `ctx= threads= batch= slots= queue= embeddings=`.
//! Methods: `generate` (streams on `CallActorStream`; the whole text on `CallActor`), `embed`
//! (JSON array of vectors), `tokenize` (JSON array of token ids), `info` (JSON).
//! Every actor of the worker loads its model through one shared loader (the worker's
//! [`xnai_inference::llama::ModelCache`]), so a model file is resident once.

mod host;
pub mod params;
pub mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use xnai_inference::{EngineLoader, InferenceEngine, InferenceError};
use xnai_proto::ids::ActorId;

use crate::actors::MethodResult;
use crate::error::{Result, WorkerError};
use crate::executor::args::Pins;
use crate::executor::{Executor, TaskArgSpec};
pub use stream::ChunkStream;

/// Name of the class in the worker's registry.
pub const CLASS: &str = "inference";
/// Methods of the class, for error messages.
pub const METHODS: &str = "generate, embed, tokenize, info";

/// One live inference actor: its engine and the pin on its model's arena copy, if any.
pub(crate) struct Served {
    pub(crate) id: ActorId,
    pub(crate) engine: Arc<dyn InferenceEngine>,
    _model_pin: Option<Pins>,
}

/// The inference actors of this worker. Thread-safe; share it behind an `Arc`.
pub struct InferenceActors {
    loader: Arc<dyn EngineLoader>,
    actors: RwLock<HashMap<ActorId, Arc<Served>>>,
    /// Serialises constructions, so a retried StartActor never loads an engine twice.
    starting: tokio::sync::Mutex<()>,
}

impl InferenceActors {
    /// Actors whose engines come from `loader` (the worker's model cache, or a fake in tests).
    pub fn new(loader: Arc<dyn EngineLoader>) -> Self {
        Self {
            loader,
            actors: RwLock::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    /// Actors on llama.cpp sharing one model cache of `budget_bytes`.
    pub fn with_model_budget(budget_bytes: u64) -> Self {
        Self::new(Arc::new(xnai_inference::llama::ModelCache::new(
            budget_bytes,
        )))
    }

    /// The loader engines come from (the worker's model cache), for other users of the same
    /// models (retrieval actors and the `embed` task function).
    pub fn loader(&self) -> Arc<dyn EngineLoader> {
        Arc::clone(&self.loader)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ActorId, Arc<Served>>> {
        self.actors.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ActorId, Arc<Served>>> {
        self.actors.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether actor `id` is an inference actor hosted here.
    pub fn contains(&self, id: &ActorId) -> bool {
        self.read().contains_key(id)
    }

    /// Number of live inference actors.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Constructs actor `id` from StartActor arguments: an object reference is the model
    /// (pulled into the arena at `arena_dir` if it is not here, and pinned), inline arguments
    /// are `key=value` words. `Ok(Err(text))` is a constructor (application) error.
    pub async fn start(
        &self,
        id: ActorId,
        args: Vec<TaskArgSpec>,
        executor: &Executor,
        arena_dir: &Path,
    ) -> Result<std::result::Result<(), String>> {
        if self.contains(&id) {
            return Ok(Ok(()));
        }
        let mut words = Vec::new();
        let mut model = None;
        for arg in args {
            match arg {
                TaskArgSpec::Inline(b) => words.push(b),
                TaskArgSpec::Object(_) if model.is_some() => {
                    return Ok(Err("inference: give one model object, not several".into()));
                }
                TaskArgSpec::Object(spec) => {
                    let object = spec.id;
                    let (_bytes, pins) = executor
                        .resolve_args(vec![TaskArgSpec::Object(spec)])
                        .await?;
                    // The arena keeps each object as a file named by its id (`arena::fsops`).
                    let path = arena_dir.join(object.hex());
                    if !path.is_file() {
                        return Err(WorkerError::ObjectUnavailable {
                            object,
                            reason: format!("its arena file {} is missing", path.display()),
                        });
                    }
                    tracing::info!(actor_id = %id, object_id = %object, path = %path.display(), "model object in the arena");
                    model = Some((path, Some(pins)));
                }
            }
        }
        Ok(self.start_with(id, model, &words).await)
    }

    /// Constructs actor `id` from `key=value` words and, if given, a model file already on this
    /// machine (with the pin that keeps it there). Starting a live actor again is a no-op.
    pub async fn start_with(
        &self,
        id: ActorId,
        model: Option<(PathBuf, Option<Pins>)>,
        words: &[Bytes],
    ) -> std::result::Result<(), String> {
        let _one_at_a_time = self.starting.lock().await;
        if self.contains(&id) {
            return Ok(());
        }
        let mut parsed = params::constructor(words)?;
        let (path, pin) = match (model, parsed.model_path.take()) {
            (Some(_), Some(_)) => {
                return Err("inference: give the model once (object or model=PATH)".into());
            }
            (Some((path, pin)), None) => (path, pin),
            (None, Some(path)) => (path, None),
            (None, None) => {
                return Err(
                    "inference: no model: pass model=PATH (a GGUF file on the worker) \
                            or a GGUF object reference"
                        .into(),
                );
            }
        };
        parsed.config.model_path = path;
        let engine = self
            .loader
            .load(parsed.config)
            .await
            .map_err(|e| format!("inference: {e}"))?;
        let info = engine.info();
        tracing::info!(
            actor_id = %id,
            model = %info.config.model_path.display(),
            ctx = info.config.ctx,
            slots = info.config.slots,
            "inference actor started"
        );
        self.write().insert(
            id,
            Arc::new(Served {
                id,
                engine,
                _model_pin: pin,
            }),
        );
        Ok(())
    }

    /// Stops actor `id`: its engine finishes the calls already queued and then releases its
    /// contexts, its share of the model and the model's arena pin. Returns whether it was here.
    pub fn stop(&self, id: &ActorId) -> bool {
        let gone = self.write().remove(id).is_some();
        if gone {
            tracing::info!(actor_id = %id, "inference actor stopped");
        }
        gone
    }

    fn served(&self, id: &ActorId) -> Result<Arc<Served>> {
        self.read()
            .get(id)
            .cloned()
            .ok_or(WorkerError::ActorNotFound(*id))
    }

    /// Calls `method`, answering with the whole result (`generate` returns the whole text).
    /// `Ok(Err(text))` is an application error; a full queue is `InferenceBusy`.
    pub async fn call(&self, id: ActorId, method: &str, args: Vec<Bytes>) -> Result<MethodResult> {
        let served = self.served(&id)?;
        call_served(&served, method, &args).await
    }

    /// Calls `method`, streaming: `generate` sends text as it is produced, then its stats;
    /// other methods send one value. A full queue fails the call at once (`InferenceBusy`).
    pub async fn call_stream(
        &self,
        id: ActorId,
        method: &str,
        args: Vec<Bytes>,
    ) -> Result<ChunkStream> {
        let served = self.served(&id)?;
        if method != "generate" {
            return Ok(stream::single(call_served(&served, method, &args).await?));
        }
        let (prompt, params) = match params::generate(&args) {
            Ok(p) => p,
            Err(text) => return Ok(stream::single(Err(text))),
        };
        match served.engine.generate(prompt, params) {
            Ok(events) => Ok(stream::generation(events)),
            Err(e) => app_or_busy(id, e).map(stream::single),
        }
    }
}

/// Runs a non-streaming method on `served`.
async fn call_served(served: &Served, method: &str, args: &[Bytes]) -> Result<MethodResult> {
    let engine = &served.engine;
    let done = match method {
        "generate" => {
            let (prompt, params) = match params::generate(args) {
                Ok(p) => p,
                Err(text) => return Ok(Err(text)),
            };
            match engine.generate(prompt, params) {
                Ok(events) => events.collect().await.map(|(text, _)| Bytes::from(text)),
                Err(e) => Err(e),
            }
        }
        "embed" => match params::embed(args) {
            Ok(texts) => engine.embed(texts).await.and_then(|v| json(&v)),
            Err(text) => return Ok(Err(text)),
        },
        "tokenize" => match params::tokenize(args) {
            Ok(text) => engine.tokenize(text).await.and_then(|v| json(&v)),
            Err(text) => return Ok(Err(text)),
        },
        "info" => json(&engine.info()),
        other => {
            return Ok(Err(format!(
                "inference has no method {other:?}; methods: {METHODS}"
            )));
        }
    };
    match done {
        Ok(bytes) => Ok(Ok(bytes)),
        Err(e) => app_or_busy(served.id, e),
    }
}

/// A full queue is a system condition (RESOURCE_EXHAUSTED); every other engine error is the
/// method's application error.
fn app_or_busy(id: ActorId, e: InferenceError) -> Result<MethodResult> {
    match e {
        InferenceError::QueueFull { .. } => Err(WorkerError::InferenceBusy {
            actor: id,
            reason: e.to_string(),
        }),
        other => Ok(Err(format!("inference: {other}"))),
    }
}

fn json<T: serde::Serialize>(value: &T) -> std::result::Result<Bytes, InferenceError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| InferenceError::InvalidParameter(format!("cannot encode the reply: {e}")))
}
