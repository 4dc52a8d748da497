//! The crate's error type: every way reading a GGUF file, planning memory, loading a model or
//! running it can fail, each with a message a user can act on. The worker maps these onto gRPC
//! codes (`QueueFull` is the one that becomes RESOURCE_EXHAUSTED).

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = InferenceError> = std::result::Result<T, E>;

/// Everything that can go wrong in the inference engine.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic bytes.
    #[error("{path} is not a GGUF file (first bytes {magic:02x?}, expected \"GGUF\")")]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// The bytes found instead of the magic.
        magic: Vec<u8>,
    },
    /// A GGUF version this reader does not know.
    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedGgufVersion(u32),
    /// The file ends before the header does, or a length field points past its end.
    #[error("GGUF file truncated or corrupt: {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: String,
        /// Byte offset where it was expected.
        offset: u64,
    },
    /// The header is structurally wrong (unknown value type, absurd length, bad UTF-8).
    #[error("malformed GGUF header: {0}")]
    Malformed(String),
    /// A metadata key the operation needs is absent.
    #[error("GGUF metadata lacks {0}")]
    MissingMetadata(String),
    /// Parameters that cannot work (zero slots, zero context, ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// llama.cpp could not initialise or failed to load the model or create a context.
    #[error("model load failed: {0}")]
    Load(String),
    /// Loading the model would exceed the worker's model memory budget even after unloading
    /// every model no engine uses.
    #[error(
        "model memory budget exceeded: loading {path} needs {needed_bytes} bytes, budget is \
         {budget_bytes} bytes and {in_use_bytes} bytes are held by models in use"
    )]
    BudgetExceeded {
        /// The model that was to be loaded.
        path: PathBuf,
        /// Its size.
        needed_bytes: u64,
        /// The cache's budget.
        budget_bytes: u64,
        /// Bytes of resident models that engines still use (cannot be unloaded).
        in_use_bytes: u64,
    },
    /// All slots are busy and the wait queue is full.
    #[error(
        "inference queue full: all slots busy and {capacity} calls already waiting; retry later"
    )]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The prompt does not fit the context window.
    #[error(
        "prompt has {prompt_tokens} tokens but the context holds {ctx} (leave room to generate)"
    )]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The context size.
        ctx: u32,
    },
    /// A text to embed is longer than one batch.
    #[error("text {index} has {tokens} tokens; embedding takes at most {limit} (the batch size)")]
    TextTooLong {
        /// Position of the text in the request.
        index: usize,
        /// Its token count.
        tokens: usize,
        /// The limit.
        limit: usize,
    },
    /// `embed` on an engine loaded without embeddings.
    #[error("this engine was loaded with embeddings off; load it with embeddings on to embed")]
    EmbeddingsDisabled,
    /// llama.cpp failed while evaluating tokens.
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    /// The engine shut down (its slot threads are gone) before answering.
    #[error("inference engine stopped")]
    Stopped,
}

impl InferenceError {
    /// An `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
