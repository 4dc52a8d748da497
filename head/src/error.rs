//! [`HeadError`]: every way a head call or the head's startup can fail, and the ONE mapping
//! from it to a gRPC status, with messages that tell the caller what to do about it.

use xnai_proto::ids::{IdParseError, ObjectId};
use xnai_proto::limits::{MAX_INLINE_ARGS_BYTES, MAX_NAME_BYTES};
use xnai_proto::units::format_size;

use crate::log::LogError;
use crate::state::ApplyError;

/// Result alias of the head crate.
pub type Result<T, E = HeadError> = std::result::Result<T, E>;

/// Errors of the head: per-call ones (mapped to a gRPC status) and fatal startup ones.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// An id is not 32 hex characters.
    #[error(transparent)]
    MalformedId(#[from] IdParseError),
    /// A write came without a request id.
    #[error(
        "request_id is empty: set a unique non-empty string per operation so retries apply once"
    )]
    MissingRequestId,
    /// Inline arguments are over the limit.
    #[error(
        "inline arguments total {size} bytes, over the {MAX_INLINE_ARGS_BYTES} byte limit: put the data as an object and pass it by reference"
    )]
    InlineArgsTooBig {
        /// Their total size.
        size: usize,
    },
    /// A name is empty or too long.
    #[error("{what} must be 1 to {MAX_NAME_BYTES} bytes, got {len}")]
    BadName {
        /// Which name ("function", "class", "actor name").
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A request id was used before for a different kind of operation.
    #[error("request_id {0:?} was already used for a different operation; use a fresh one")]
    RequestIdReused(String),
    /// Any other malformed field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The state machine refused the command.
    #[error(transparent)]
    Refused(#[from] ApplyError),
    /// No object with this id.
    #[error("no object {0}")]
    NoSuchObject(ObjectId),
    /// No actor with this name or id.
    #[error("no actor {0:?}; see `xnai actor list`")]
    NoSuchActor(String),
    /// The pending task limit is reached.
    #[error("too many pending tasks ({0}); wait for some to finish")]
    TooManyPendingTasks(u64),
    /// No arena can ever hold an object of this size.
    #[error(
        "object of {} does not fit: the largest arena holds {} ({} free)",
        format_size(*size), format_size(*largest), format_size(*free)
    )]
    ObjectTooBig {
        /// Requested size.
        size: u64,
        /// Capacity of the largest arena.
        largest: u64,
        /// Free bytes in that arena.
        free: u64,
    },
    /// No worker offers enough memory for an actor, even when idle.
    #[error(
        "{class} actor needs {} of memory; no worker can ever hold it: the best worker has {} \
         free of {} (worker {worker} at {address})",
        format_size(*need), format_size(*free), format_size(*total)
    )]
    ActorTooBig {
        /// The actor's class.
        class: String,
        /// Memory it asks for.
        need: u64,
        /// Free memory of the worker offering the most memory.
        free: u64,
        /// That worker's total memory.
        total: u64,
        /// That worker's id.
        worker: String,
        /// That worker's address.
        address: String,
    },
    /// No worker is heartbeating.
    #[error("no live worker: start workers (for example with `xnai up`) and retry")]
    NoLiveWorker,
    /// The head is stopping; ask another head or retry after it restarts.
    #[error("the head is shutting down; retry (another head will answer)")]
    ShuttingDown,
    /// The command log failed or stopped.
    #[error("head storage unavailable: {0}")]
    Log(#[from] LogError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The address file could not be written.
    #[error("cannot write address file {path}: {source}")]
    AddrFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    /// An essential task (the Raft node, the runtime supervisor, the server) died: the head
    /// stops so that it is restarted.
    #[error("{0}")]
    TaskDied(#[from] xnai_proto::supervise::TaskFailure),
}

impl From<HeadError> for tonic::Status {
    /// The one map from a head error to a gRPC status. "Not the leader", whether the gate
    /// refused the call or a proposal lost leadership mid-flight, is UNAVAILABLE carrying the
    /// toolkit's leader hint, so callers go to the leader.
    fn from(e: HeadError) -> Self {
        use tonic::Code;
        if let HeadError::Log(not_leader @ LogError::NotLeader { leader }) = &e {
            return xnai_proto::net::not_leader(not_leader.to_string(), leader.as_deref());
        }
        let code = match &e {
            HeadError::MalformedId(_)
            | HeadError::MissingRequestId
            | HeadError::InlineArgsTooBig { .. }
            | HeadError::BadName { .. }
            | HeadError::RequestIdReused(_)
            | HeadError::InvalidArgument(_) => Code::InvalidArgument,
            HeadError::Refused(a) => match a {
                ApplyError::UnknownFunction { .. } | ApplyError::UnknownClass { .. } => {
                    Code::InvalidArgument
                }
                ApplyError::NameTaken(_) => Code::AlreadyExists,
                ApplyError::NoSuchObject(_)
                | ApplyError::NoSuchActor(_)
                | ApplyError::NoSuchSession(_) => Code::NotFound,
                ApplyError::UnknownWorker(_) | ApplyError::Conflict(_) => Code::FailedPrecondition,
                ApplyError::InlineBudget { .. } => Code::ResourceExhausted,
            },
            HeadError::NoSuchObject(_) | HeadError::NoSuchActor(_) => Code::NotFound,
            HeadError::TooManyPendingTasks(_)
            | HeadError::ObjectTooBig { .. }
            | HeadError::ActorTooBig { .. } => Code::ResourceExhausted,
            // Not UNAVAILABLE: clients read that as "try another head", and every head agrees.
            HeadError::NoLiveWorker => Code::FailedPrecondition,
            HeadError::ShuttingDown
            | HeadError::Log(LogError::Closed)
            | HeadError::Log(LogError::Failed(_))
            | HeadError::Log(LogError::NotLeader { .. }) => Code::Unavailable,
            HeadError::Log(LogError::Membership(_)) => Code::FailedPrecondition,
            HeadError::Log(_)
            | HeadError::Bind { .. }
            | HeadError::AddrFile { .. }
            | HeadError::Serve(_)
            | HeadError::Reflection(_) => Code::Internal,
            HeadError::TaskDied(_) => Code::Unavailable,
        };
        tonic::Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    fn status(e: impl Into<HeadError>) -> Status {
        Status::from(e.into())
    }

    #[test]
    fn maps_codes_and_messages() {
        let s = status(ApplyError::UnknownFunction {
            function: "foo".into(),
            offered: vec![
                "digest".into(),
                "echo".into(),
                "fill".into(),
                "sleep".into(),
            ],
        });
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "unknown function \"foo\"; workers offer: digest, echo, fill, sleep"
        );
        let s = status(HeadError::TooManyPendingTasks(5));
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::ResourceExhausted,
                "too many pending tasks (5); wait for some to finish"
            )
        );
        let s = status(HeadError::InlineArgsTooBig { size: 2 << 20 });
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message()
                .contains("put the data as an object and pass it by reference")
        );
        let s = status(HeadError::NoSuchObject(ObjectId(1)));
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "no object 00000000000000000000000000000001")
        );
        let s = status(ApplyError::NameTaken("c".into()));
        assert_eq!(s.code(), Code::AlreadyExists);
        let s = status(ApplyError::InlineBudget {
            need: 1024,
            used: 2048,
            budget: 2048,
        });
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("budget 2048 bytes"), "{}", s.message());
        let s = status(HeadError::ObjectTooBig {
            size: 2 << 30,
            largest: 1 << 30,
            free: 512 << 20,
        });
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "object of 2.0 GiB does not fit: the largest arena holds 1.0 GiB (512.0 MiB free)"
        );
        let bad = xnai_proto::ids::TaskId::parse("zz").map_err(HeadError::from);
        let s = status(bad.err().unwrap_or(HeadError::MissingRequestId));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("malformed task id"));
        assert_eq!(status(LogError::Closed).code(), Code::Unavailable);
    }

    #[test]
    fn losing_leadership_mid_proposal_names_the_leader() {
        // What a pending proposal fails with when this head steps down before it commits.
        let lost = HeadError::from(LogError::NotLeader {
            leader: Some("127.0.0.1:7002".into()),
        });
        let s = Status::from(lost);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            xnai_proto::net::leader_hint(&s),
            Some("127.0.0.1:7002"),
            "{s:?}"
        );
        assert_eq!(s.message(), "not the leader; leader is 127.0.0.1:7002");
        let s = Status::from(HeadError::from(LogError::NotLeader { leader: None }));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(xnai_proto::net::leader_hint(&s), None);
        assert!(xnai_proto::net::retriable(s.code()));
    }
}
