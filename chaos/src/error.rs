//! The harness's error type: failures to run (a cluster that does not start, a signal that
//! cannot be sent, a report that cannot be written). Violations found by checkers are not
//! errors: they are results, in the report.

/// Result alias of the chaos library.
pub type Result<T, E = ChaosError> = std::result::Result<T, E>;

/// Why a chaos run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// A flag or argument is unusable.
    #[error("{0}")]
    Config(String),
    /// Starting, stopping or signalling a cluster process failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The cluster could not be reached for setup (before any fault).
    #[error("client: {0}")]
    Client(#[from] xnai_sdk::Error),
}

impl ChaosError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
