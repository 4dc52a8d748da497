//! `LlamaEngine`: the [`InferenceEngine`] on llama.cpp through llama-cpp-2. One process-wide
//! `LlamaBackend` (initialised once, llama.cpp's logs routed to `tracing`: filter them with
//! `llama_cpp_2=warn`), models shared through the [`ModelCache`], and one llama.cpp context per
//! slot, each owned by its own OS thread, so evaluation never runs on the async runtime.
//! Calls wait for a free slot in one FIFO channel, bounded by [`Admission`].

mod cache;
mod slot;

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use tokio::sync::{mpsc, oneshot};

pub use cache::{ModelCache, ResidentModel};
use slot::{Job, SlotSetup};

use crate::engine::{
    EngineConfig, EngineFuture, EngineInfo, GenerateParams, GenerateStream, InferenceEngine,
};
use crate::error::{InferenceError, Result};
use crate::gguf::GgufHeader;
use crate::queue::Admission;

/// Events buffered between a slot thread and a slow reader before generation waits.
const STREAM_BUFFER: usize = 256;

/// The process's llama.cpp backend, initialised on first use.
pub fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| InferenceError::Load(format!("llama.cpp backend: {e}")))
}

/// A model served by llama.cpp with `slots` contexts. See the module doc.
///
/// Dropping it closes the job channel; the slot threads finish the calls already queued and
/// exit, releasing their contexts and their share of the model.
pub struct LlamaEngine {
    info: EngineInfo,
    model: Arc<LlamaModel>,
    jobs: std_mpsc::Sender<Job>,
    admission: Admission,
}

impl LlamaEngine {
    /// Loads `config.model_path` through `cache` and starts one slot thread per slot, each with
    /// its contexts. Blocks (model load, context allocation): call it off the async runtime.
    pub fn load(cache: &ModelCache, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let header = GgufHeader::read_path(&config.model_path)?;
        let facts = header.model_facts()?;
        let model = cache.get_or_load(&config.model_path)?;
        let pooling = match facts.pooling_type.as_deref() {
            Some("cls") => LlamaPoolingType::Cls,
            Some("last") => LlamaPoolingType::Last,
            Some("rank") => LlamaPoolingType::Rank,
            _ => LlamaPoolingType::Mean,
        };
        let (jobs, job_rx) = std_mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (ready_tx, ready_rx) = std_mpsc::channel();
        for index in 0..config.slots {
            let setup = SlotSetup {
                index,
                model: Arc::clone(&model),
                config: config.clone(),
                pooling,
                jobs: Arc::clone(&job_rx),
                ready: ready_tx.clone(),
            };
            std::thread::Builder::new()
                .name(format!("xnai-slot-{index}"))
                .spawn(move || slot::run(setup))
                .map_err(|e| InferenceError::Load(format!("cannot start slot thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..config.slots {
            // On failure `jobs` is dropped on return, so the started threads exit.
            ready_rx.recv().map_err(|_| InferenceError::Stopped)??;
        }
        let embedding_dim = usize::try_from(model.n_embd()).unwrap_or(0);
        tracing::info!(
            model = %config.model_path.display(), slots = config.slots, ctx = config.ctx,
            threads = config.threads, "llama engine ready"
        );
        Ok(Self {
            admission: Admission::new(config.slots, config.queue_capacity),
            info: EngineInfo {
                model: facts,
                config,
                embedding_dim,
            },
            model,
            jobs,
        })
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| InferenceError::Stopped)
    }
}

impl InferenceEngine for LlamaEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn generate(&self, prompt: String, params: GenerateParams) -> Result<GenerateStream> {
        let admitted = self.admission.try_admit()?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.submit(Job::Generate {
            prompt,
            params,
            tx,
            called: Instant::now(),
            _admitted: admitted,
        })?;
        Ok(GenerateStream::new(rx))
    }

    fn embed(&self, texts: Vec<String>) -> EngineFuture<'_, Vec<Vec<f32>>> {
        Box::pin(async move {
            if !self.info.config.embeddings {
                return Err(InferenceError::EmbeddingsDisabled);
            }
            let admitted = self.admission.try_admit()?;
            let (reply, answer) = oneshot::channel();
            self.submit(Job::Embed {
                texts,
                reply,
                _admitted: admitted,
            })?;
            answer.await.map_err(|_| InferenceError::Stopped)?
        })
    }

    fn tokenize(&self, text: String) -> EngineFuture<'_, Vec<i32>> {
        let model = Arc::clone(&self.model);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                model
                    .vocab()
                    .tokenize(text.as_bytes(), true, true)
                    .into_iter()
                    .map(|t| t.0)
                    .collect()
            })
            .await
            .map_err(|e| InferenceError::Decode(format!("tokenize task failed: {e}")))
        })
    }
}
