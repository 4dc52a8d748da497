//! The inference boundary: the [`InferenceEngine`] trait the worker's `inference` actor calls,
//! the [`EngineLoader`] that builds engines, and their parameter, event and metadata types.
//! `LlamaEngine` (feature `llama`) and `FakeEngine` (feature `fake`) implement it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::{InferenceError, Result};
use crate::gguf::ModelFacts;

/// A boxed future, so the traits stay object-safe (`Arc<dyn InferenceEngine>`).
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How to load an engine: the model and the llama.cpp parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Path of the GGUF file on this machine (e.g. in the worker's tmpfs arena).
    pub model_path: PathBuf,
    /// Context size in tokens, per slot.
    pub ctx: u32,
    /// CPU threads per evaluation.
    pub threads: i32,
    /// Batch size: prompt tokens evaluated per llama.cpp call; also the longest text `embed`
    /// takes.
    pub batch: u32,
    /// Parallel slots: requests served at once, one llama.cpp context each.
    pub slots: usize,
    /// Calls that may wait for a slot; one more gets [`InferenceError::QueueFull`].
    pub queue_capacity: usize,
    /// Also create an embedding context per slot so `embed` works.
    pub embeddings: bool,
}

impl EngineConfig {
    /// Defaults for `model_path`: ctx 2048, 2 threads, batch 512, 1 slot, queue 16, no
    /// embeddings.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            ctx: 2048,
            threads: 2,
            batch: 512,
            slots: 1,
            queue_capacity: 16,
            embeddings: false,
        }
    }

    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<()> {
        if self.ctx < 8 || self.batch == 0 || self.slots == 0 || self.threads <= 0 {
            return Err(InferenceError::InvalidParameter(format!(
                "need ctx >= 8, batch > 0, slots > 0, threads > 0 (got ctx {}, batch {}, \
                 slots {}, threads {})",
                self.ctx, self.batch, self.slots, self.threads
            )));
        }
        Ok(())
    }
}

/// Sampling and stopping for one `generate` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// 0 = greedy (deterministic); higher = more random.
    pub temperature: f32,
    /// Nucleus sampling; 1.0 disables it.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 disables it.
    pub top_k: i32,
    /// Seed of the sampler's random numbers.
    pub seed: u32,
    /// Generation ends before the first occurrence of any of these; it is not emitted.
    pub stop: Vec<String>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// `max_tokens` reached.
    Length,
    /// A stop string appeared.
    Stop,
    /// The model produced an end-of-generation token.
    EndOfText,
    /// The context window is full.
    ContextFull,
    /// The caller dropped the stream.
    Cancelled,
}

/// Counts and timings of a finished `generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateStats {
    /// Tokens in the prompt (including BOS).
    pub prompt_tokens: u32,
    /// Tokens sampled.
    pub generated_tokens: u32,
    /// Time waiting for a slot.
    pub queue_ms: f64,
    /// Time evaluating the prompt.
    pub prompt_ms: f64,
    /// Time from the first sampled token to the end.
    pub generate_ms: f64,
    /// From the `generate` call to the first token sent.
    pub time_to_first_token_ms: f64,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

impl GenerateStats {
    /// Prompt tokens per second.
    pub fn prompt_tokens_per_s(&self) -> f64 {
        f64::from(self.prompt_tokens) * 1000.0 / self.prompt_ms.max(1e-9)
    }

    /// Generated tokens per second; the first token's sampling counts as prompt work, so this
    /// is (n - 1) tokens over `generate_ms`, as llama-bench counts it.
    pub fn generated_tokens_per_s(&self) -> f64 {
        f64::from(self.generated_tokens.saturating_sub(1)) * 1000.0 / self.generate_ms.max(1e-9)
    }
}

/// One event of a `generate` stream: text pieces, then exactly one `Done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerateEvent {
    /// Valid UTF-8 text produced by one or more tokens.
    Token(String),
    /// The end, with counts and timings.
    Done(GenerateStats),
}

/// The receiving end of a `generate` call. An `Err` item ends the stream; dropping it cancels
/// the generation at the next token.
#[derive(Debug)]
pub struct GenerateStream {
    rx: mpsc::Receiver<Result<GenerateEvent>>,
}

impl GenerateStream {
    /// Wraps a channel filled by an engine.
    pub fn new(rx: mpsc::Receiver<Result<GenerateEvent>>) -> Self {
        Self { rx }
    }

    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<GenerateEvent>> {
        self.rx.recv().await
    }

    /// The underlying channel (e.g. to wrap in a `tokio_stream::wrappers::ReceiverStream`).
    pub fn into_inner(self) -> mpsc::Receiver<Result<GenerateEvent>> {
        self.rx
    }

    /// Waits for the whole generation: the text and the stats.
    pub async fn collect(mut self) -> Result<(String, GenerateStats)> {
        let mut text = String::new();
        while let Some(event) = self.next().await {
            match event? {
                GenerateEvent::Token(piece) => text.push_str(&piece),
                GenerateEvent::Done(stats) => return Ok((text, stats)),
            }
        }
        Err(InferenceError::Stopped)
    }
}

/// What `info` reports: the model's facts and how the engine runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The model, from its GGUF header.
    pub model: ModelFacts,
    /// The parameters the engine was loaded with.
    pub config: EngineConfig,
    /// Dimension of `embed` vectors (the model's embedding length).
    pub embedding_dim: usize,
}

/// A loaded model serving generate, embed and tokenize calls.
///
/// Thread-safety: implementations are `Send + Sync` and take `&self`; concurrent calls beyond
/// the configured slots wait in a bounded FIFO queue.
pub trait InferenceEngine: Send + Sync {
    /// Model metadata and engine parameters.
    fn info(&self) -> EngineInfo;

    /// Starts generating from `prompt`. Returns at once: [`InferenceError::QueueFull`] if the
    /// queue is full, otherwise a stream that yields tokens as they are produced. Errors met
    /// later (prompt too long, decode failure) arrive as the stream's last item.
    fn generate(&self, prompt: String, params: GenerateParams) -> Result<GenerateStream>;

    /// Embeds each text with the model's pooling (mean for models that declare none); vectors
    /// are L2-normalised, so a dot product is the cosine similarity.
    fn embed(&self, texts: Vec<String>) -> EngineFuture<'_, Vec<Vec<f32>>>;

    /// Token ids of `text` as the model sees it (with BOS if the model adds one).
    fn tokenize(&self, text: String) -> EngineFuture<'_, Vec<i32>>;
}

/// Builds engines; the worker holds one (the llama.cpp model cache, or a fake in tests).
pub trait EngineLoader: Send + Sync {
    /// Loads (or reuses) the model and creates the engine's contexts.
    fn load(&self, config: EngineConfig) -> EngineFuture<'_, Arc<dyn InferenceEngine>>;
}
