//! The SDK's one error type: gRPC statuses keep their code and message, and the outcomes a
//! caller must tell apart (task failed, object lost, timeout, actor method error) get their own
//! variants so programs can match on them instead of parsing text.

use tonic::Code;

/// Result alias used throughout the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node answered with a gRPC error status (or the transport failed); code and message are
    /// kept as they were.
    #[error("{message}")]
    Rpc {
        /// The gRPC status code.
        code: Code,
        /// The status message (the code's description when the node sent none).
        message: String,
    },
    /// None of the configured heads could be reached.
    #[error("cannot reach any head ({heads}): {reason}")]
    NoHead {
        /// The addresses that were tried, comma separated.
        heads: String,
        /// The last failure.
        reason: String,
    },
    /// The task that produces the object failed for good; the text is the task's error.
    #[error("task failed: {0}")]
    TaskFailed(String),
    /// Every copy of the object is gone and it cannot be rebuilt.
    #[error("object lost: {0}")]
    ObjectLost(String),
    /// The wait ended before the object (or actor) was ready.
    #[error("timed out: {0}")]
    Timeout(String),
    /// An actor method (or constructor) returned an application error.
    #[error("actor method failed: {0}")]
    ActorMethod(String),
    /// The actor is dead (killed or failed for good).
    #[error("actor {actor} is dead: {reason}")]
    ActorDead {
        /// Name or id of the actor.
        actor: String,
        /// Why it died, as the head reports it.
        reason: String,
    },
    /// Bytes received for an object do not match its size or CRC-32.
    #[error("object {object} is corrupt from {address}: {what}")]
    Corrupt {
        /// The object's id.
        object: String,
        /// The worker that served it.
        address: String,
        /// What did not match.
        what: String,
    },
    /// The caller passed something unusable (checked before any call is made).
    #[error("{0}")]
    InvalidArgument(String),
    /// A node's reply did not follow the contract (e.g. a malformed id).
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// Reading or writing a local file or stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "reading /tmp/x".
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The gRPC code behind this error, when it came from a node.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            Error::NoHead { .. } => Some(Code::Unavailable),
            _ => None,
        }
    }

    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when retrying the same call on another node may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.code(), Some(Code::Unavailable))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        let message = if s.message().is_empty() {
            s.code().description().to_string()
        } else {
            s.message().to_string()
        };
        Error::Rpc {
            code: s.code(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_code_and_message() {
        let e = Error::from(tonic::Status::invalid_argument("unknown function \"foo\""));
        assert_eq!(e.code(), Some(Code::InvalidArgument));
        assert_eq!(e.to_string(), "unknown function \"foo\"");
        let empty = Error::from(tonic::Status::unavailable(""));
        assert!(empty.is_unavailable());
        assert!(!empty.to_string().is_empty());
    }
}
