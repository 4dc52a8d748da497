//! The worker's one error type and its single mapping to gRPC statuses.
//!
//! Every module returns [`WorkerError`]; handlers convert it with `?` into a `tonic::Status` whose
//! code tells the caller whether to fix its request, retry elsewhere or wait.

use std::sync::Arc;

use tonic::Status;
use xnai_proto::ids::{ActorId, IdParseError, ObjectId};
use xnai_proto::units::format_size;

/// Result alias used across the worker crate.
pub type Result<T, E = WorkerError> = std::result::Result<T, E>;

/// Everything that can go wrong inside the worker. Cloneable so a task's result can be shared by
/// every caller waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerError {
    /// A reservation did not fit even after evicting every unpinned object.
    #[error(
        "arena full: need {}, free {} of {} ({} pinned)",
        format_size(*need),
        format_size(*free),
        format_size(*capacity),
        format_size(*pinned)
    )]
    ArenaFull {
        /// Bytes asked for.
        need: u64,
        /// Bytes neither used nor reserved.
        free: u64,
        /// The arena's hard capacity.
        capacity: u64,
        /// Bytes held by pinned objects (primary copies and objects in use).
        pinned: u64,
    },
    /// A reservation did not fit even after evicting unpinned copies and spilling every
    /// unpinned primary the spill directory could take.
    #[error(
        "arena full: need {}, free {} of {} ({} pinned); spill directory: {} free of {}",
        format_size(*need),
        format_size(*free),
        format_size(*capacity),
        format_size(*pinned),
        format_size(*spill_free),
        format_size(*spill_capacity)
    )]
    ArenaAndSpillFull {
        /// Bytes asked for.
        need: u64,
        /// Arena bytes neither used nor reserved.
        free: u64,
        /// The arena's hard capacity.
        capacity: u64,
        /// Arena bytes held by pinned objects (objects in use, primaries being spilled).
        pinned: u64,
        /// Spill bytes neither used nor being written.
        spill_free: u64,
        /// The spill directory's bound (`--spill-bytes`).
        spill_capacity: u64,
    },
    /// A spill file no longer matches its object's CRC-32: the copy is dropped (and reported
    /// removed to the head), never served.
    #[error(
        "object {object}: its spill file is corrupt (crc32 {got:08x}, expected {expected:08x}); the copy was dropped"
    )]
    SpillCorrupt {
        /// The object.
        object: ObjectId,
        /// CRC-32 recorded when the object was stored.
        expected: u32,
        /// CRC-32 of the spill file.
        got: u32,
    },
    /// A `PutObject` stream sent nothing for the idle timeout; its reservation was released.
    #[error("PutObject: no message for {secs:.1} s (the idle timeout); the put was dropped")]
    PutIdle {
        /// The idle timeout in seconds.
        secs: f64,
    },
    /// The arena's filesystem cannot hold the configured capacity (fatal at start).
    #[error(
        "arena: {} has {} free, cannot hold --arena-bytes {}; shrink --arena-bytes or enlarge the tmpfs mount",
        dir,
        format_size(*free),
        format_size(*capacity)
    )]
    ArenaTooSmall {
        /// The directory (or its mount) that was checked.
        dir: String,
        /// Free bytes on its filesystem.
        free: u64,
        /// The requested capacity.
        capacity: u64,
    },
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the worker was doing.
        context: String,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An object's byte count differs from what was announced.
    #[error("object size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch {
        /// Announced size.
        expected: u64,
        /// Bytes actually received (so far, when more than expected).
        got: u64,
    },
    /// An object's CRC-32 differs from what was announced.
    #[error("object checksum mismatch: expected crc32 {expected:08x}, got {got:08x}")]
    CrcMismatch {
        /// Announced CRC-32.
        expected: u32,
        /// CRC-32 of the received bytes.
        got: u32,
    },
    /// The object is not in this worker's arena.
    #[error("no object {0} on this worker")]
    ObjectNotFound(ObjectId),
    /// A task argument could not be obtained from any of its locations.
    #[error("cannot get argument object {object}: {reason}")]
    ObjectUnavailable {
        /// The argument object.
        object: ObjectId,
        /// Why every location failed.
        reason: String,
    },
    /// A malformed id in a request.
    #[error(transparent)]
    BadId(#[from] IdParseError),
    /// Any other malformed request (missing header, oversized inline args, ...).
    #[error("{0}")]
    BadRequest(String),
    /// The function is not in this worker's registry.
    #[error("unknown function {name:?}; this worker offers: {offered}")]
    UnknownFunction {
        /// Requested name.
        name: String,
        /// Comma-separated registered names.
        offered: String,
    },
    /// The actor class is not in this worker's registry.
    #[error("unknown actor class {name:?}; this worker offers: {offered}")]
    UnknownClass {
        /// Requested name.
        name: String,
        /// Comma-separated registered names.
        offered: String,
    },
    /// No actor with this id runs on this worker.
    #[error("no actor {0} on this worker")]
    ActorNotFound(ActorId),
    /// The actor's mailbox holds the maximum number of pending calls.
    #[error("actor {actor} has {pending} calls pending (the mailbox limit); retry later")]
    MailboxFull {
        /// The busy actor.
        actor: ActorId,
        /// Its mailbox limit.
        pending: usize,
    },
    /// An inference actor's slots are all busy and its wait queue is full.
    #[error("actor {actor}: {reason}")]
    InferenceBusy {
        /// The busy actor.
        actor: ActorId,
        /// The engine's explanation (queue capacity, retry later).
        reason: String,
    },
    /// A call to the head failed.
    #[error("head: {context}: {message}")]
    Head {
        /// What the worker asked the head.
        context: String,
        /// The head's (or transport's) answer.
        message: String,
    },
    /// The maximum number of same-host puts are open (created, not yet sealed).
    #[error(
        "{open} local puts are open on this worker (the limit); seal or abort one, or retry later"
    )]
    LocalPutsFull {
        /// The limit.
        open: usize,
    },
    /// No open same-host put has this ticket (never created, sealed, aborted or expired).
    #[error("no open local put {0} on this worker (sealed, aborted or expired after its lease)")]
    NoLocalPut(u64),
    /// The worker is stopping and takes no more work.
    #[error("worker is shutting down")]
    ShuttingDown,
    /// Bad configuration (fatal at start).
    #[error("{0}")]
    Config(String),
    /// An essential task (head link, heartbeats, the server, the health check) died: the
    /// worker stops so that it is restarted.
    #[error("{0}")]
    TaskDied(#[from] xnai_proto::supervise::TaskFailure),
}

impl WorkerError {
    /// Wrap an I/O error with what the worker was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

impl From<WorkerError> for Status {
    fn from(e: WorkerError) -> Self {
        let msg = e.to_string();
        match e {
            WorkerError::ArenaFull { .. }
            | WorkerError::ArenaAndSpillFull { .. }
            | WorkerError::MailboxFull { .. }
            | WorkerError::LocalPutsFull { .. }
            | WorkerError::InferenceBusy { .. } => Status::resource_exhausted(msg),
            WorkerError::SizeMismatch { .. }
            | WorkerError::CrcMismatch { .. }
            | WorkerError::BadId(_)
            | WorkerError::BadRequest(_)
            | WorkerError::UnknownFunction { .. }
            | WorkerError::UnknownClass { .. } => Status::invalid_argument(msg),
            WorkerError::ObjectNotFound(_)
            | WorkerError::ActorNotFound(_)
            | WorkerError::NoLocalPut(_) => Status::not_found(msg),
            WorkerError::ObjectUnavailable { .. }
            | WorkerError::SpillCorrupt { .. }
            | WorkerError::Head { .. }
            | WorkerError::ShuttingDown
            | WorkerError::TaskDied(_) => Status::unavailable(msg),
            WorkerError::PutIdle { .. } => Status::deadline_exceeded(msg),
            WorkerError::ArenaTooSmall { .. } | WorkerError::Config(_) => {
                Status::failed_precondition(msg)
            }
            WorkerError::Io { ref source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                Status::resource_exhausted(msg)
            }
            WorkerError::Io { .. } => Status::internal(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_full_reads_like_the_contract() {
        let e = WorkerError::ArenaFull {
            need: 64 << 20,
            free: 12 << 20,
            capacity: 1 << 30,
            pinned: 900 << 20,
        };
        assert_eq!(
            e.to_string(),
            "arena full: need 64.0 MiB, free 12.0 MiB of 1.0 GiB (900.0 MiB pinned)"
        );
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn too_small_reads_like_the_contract() {
        let e = WorkerError::ArenaTooSmall {
            dir: "/dev/shm".into(),
            free: 512 << 20,
            capacity: 1 << 30,
        };
        assert_eq!(
            e.to_string(),
            "arena: /dev/shm has 512.0 MiB free, cannot hold --arena-bytes 1.0 GiB; shrink --arena-bytes or enlarge the tmpfs mount"
        );
    }
}
