//! The command log: how commands become durable and applied. [`CommandLog`] is the seam between
//! the services/runtime and the log; production runs the Raft log ([`crate::raft::RaftLog`]),
//! for one head too. A light single-node log (`SledLog`) exists in test builds only, and one
//! suite ([`tests`]) runs against both.
//!
//! Read view: the state lives in an `Arc<RwLock<ControlState>>` ([`SharedState`]) written only
//! by the log's owner task, which applies a whole batch under one write lock and only then bumps
//! the applied-index watch and replies. A reader therefore sees every acknowledged write, never
//! half a batch, and holds the lock only inside a short closure (never across an await).

pub mod effects;
#[cfg(test)]
mod sled_log;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::state::{Command, ControlState, Effect, Outcome};

pub use effects::{EFFECTS_QUEUE, EffectsReceiver, EffectsSender, Received, effects_channel};
#[cfg(test)]
pub(crate) use sled_log::SledLog;

/// Why a proposal was not applied.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// sled refused a read or write.
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    /// A command or snapshot could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// bincode's message.
        reason: String,
    },
    /// The data on disk cannot be read back.
    #[error("corrupt log at index {index}: {reason}")]
    Corrupt {
        /// Log index (0 for the snapshot).
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A log entry or snapshot is in a format this head does not read (written by a newer
    /// version): the head stops rather than skip it and diverge.
    #[error(
        "{what} at index {index} has format version {version}, but this head reads versions up to {known}: upgrade this head"
    )]
    UnknownFormat {
        /// "raft entry" or "snapshot".
        what: &'static str,
        /// Log index.
        index: u64,
        /// The version found.
        version: u8,
        /// The newest version this head reads.
        known: u8,
    },
    /// The log stopped (shut down or a fatal storage error).
    #[error("the command log is stopped")]
    Closed,
    /// This head's log failed for good (a storage error while persisting): nothing pending was
    /// acknowledged, and the head is stopping.
    #[error(
        "this head's raft log failed and the head is stopping ({0}); the write was not acknowledged: retry, another head will lead"
    )]
    Failed(String),
    /// This head is not (or no longer) the Raft leader; retry on the leader.
    #[error("{}", not_leader_text(.leader))]
    NotLeader {
        /// host:port of the leader, when known.
        leader: Option<String>,
    },
    /// A membership change was refused.
    #[error("membership change refused: {0}")]
    Membership(String),
}

/// "not the leader; leader is HOST:PORT" or "no leader elected yet" (the wire contract).
pub fn not_leader_text(leader: &Option<String>) -> String {
    match leader {
        Some(l) => format!("not the leader; leader is {l}"),
        None => "not the leader; no leader elected yet".into(),
    }
}

/// One head of the group as `ClusterStatus` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadInfo {
    /// Raft id.
    pub id: u64,
    /// host:port.
    pub address: String,
    /// "leader", "follower", "candidate", "single" or "unreachable".
    pub role: String,
    /// Raft term.
    pub term: u64,
    /// Commit index.
    pub commit_index: u64,
    /// Process id (0 when unreachable).
    pub pid: u32,
}

/// Whether this head may serve client calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This head leads (and has applied its term's first entry).
    Leader,
    /// Another head leads (its address, when known).
    Follower(Option<String>),
}

/// Commands applied together, with the effects they asked for, handed to the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedBatch {
    /// Log index of the last command in the batch.
    pub index: u64,
    /// Effects of every command in the batch, in order.
    pub effects: Vec<Effect>,
}

/// The control state as readers see it. Cloning shares the same state.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<RwLock<ControlState>>);

impl SharedState {
    /// Wrap a recovered state.
    pub fn new(state: ControlState) -> Self {
        Self(Arc::new(RwLock::new(state)))
    }

    /// Run `f` on a consistent view of the state. Keep `f` short: it blocks the log's writer.
    pub fn read<R>(&self, f: impl FnOnce(&ControlState) -> R) -> R {
        let guard = self.0.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Mutate the state; only the log's owner task calls this.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut ControlState) -> R) -> R {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// A durable, ordered log of commands in front of the state machine.
pub trait CommandLog: Send + Sync + 'static {
    /// Append `commands`, wait until they are durable and applied, and return their outcomes
    /// in order.
    fn propose(&self, commands: Vec<Command>)
    -> BoxFuture<'static, Result<Vec<Outcome>, LogError>>;

    /// The applied state.
    fn state(&self) -> &SharedState;

    /// Index of the last applied command; changes after every applied batch.
    fn applied(&self) -> watch::Receiver<u64>;

    /// Stop accepting proposals, finish the current batch and release the storage.
    fn close(&self) -> BoxFuture<'static, ()>;

    /// Whether this head may serve client calls now. A single-node log always leads.
    fn leadership(&self) -> Leadership {
        Leadership::Leader
    }

    /// Resolves once the applied state reflects every write committed before the call
    /// (ReadIndex on a Raft log); a single-node log is always current.
    fn read_barrier(&self) -> BoxFuture<'static, Result<(), LogError>> {
        Box::pin(async { Ok(()) })
    }

    /// Every head of the group with its Raft view; empty for a single-node log.
    fn heads(&self) -> BoxFuture<'static, Vec<HeadInfo>> {
        Box::pin(async { Vec::new() })
    }

    /// Add the head serving at `address` to the group; returns its id once committed.
    fn add_head(&self, address: String) -> BoxFuture<'static, Result<u64, LogError>> {
        let _ = address;
        Box::pin(async { Err(LogError::Membership("this head is not replicated".into())) })
    }

    /// Remove head `id` from the group; resolves once committed.
    fn remove_head(&self, id: u64) -> BoxFuture<'static, Result<(), LogError>> {
        let _ = id;
        Box::pin(async { Err(LogError::Membership("this head is not replicated".into())) })
    }
}
