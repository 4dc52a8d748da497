//! Errors of the retrieval index: bad parameters or requests (the caller's to fix) and
//! undecodable persisted bytes.

use thiserror::Error;

/// What can go wrong in the index.
#[derive(Debug, Error)]
pub enum RetrievalError {
    /// A parameter or request is invalid; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A vector has the wrong number of dimensions.
    #[error("vector has {got} dimensions, the index holds {want}")]
    Dimension {
        /// Dimensions of the index.
        want: usize,
        /// Dimensions given.
        got: usize,
    },
    /// Persisted bytes could not be decoded (wrong format, version, or corrupt).
    #[error("cannot decode a persisted index segment: {0}")]
    Decode(String),
    /// The index could not be encoded.
    #[error("cannot encode the index: {0}")]
    Encode(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RetrievalError>;
