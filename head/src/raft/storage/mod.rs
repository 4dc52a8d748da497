//! Where a head keeps its Raft log: the [`RaftStorage`] trait (raft-rs's read-only [`Storage`]
//! plus the writes the node makes), [`SledStorage`] on disk for production and, for tests and
//! the simulation, [`MemoryStorage`]. One suite ([`tests`]) runs against both and raft's own
//! `MemStorage`, so the fake cannot drift from the real thing.

mod sled_storage;
mod snapshot_files;

#[cfg(test)]
mod install_tests;
#[cfg(test)]
mod memory;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;

use raft::Storage;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

use crate::log::LogError;

#[cfg(test)]
pub(crate) use memory::MemoryStorage;
pub use sled_storage::SledStorage;

/// A Raft log store the node task owns: raft reads it through [`Storage`]; the node writes it
/// through these calls, then makes the writes durable with [`RaftStorage::flush`] before
/// anything that depends on them is sent or acknowledged. Cloning shares the same store (a
/// restarted node opens the same data).
pub trait RaftStorage: Storage + Clone + Send + Sync + 'static {
    /// Whether anything was ever stored (a hard state, a conf state or a snapshot).
    fn is_initialized(&self) -> bool;

    /// The latest snapshot (metadata and data).
    fn stored_snapshot(&self) -> Snapshot;

    /// The current membership.
    fn conf_state(&self) -> ConfState;

    /// Append `ents`, replacing any stored entries at or after the first one's index.
    fn append(&self, ents: &[Entry]) -> Result<(), LogError>;

    /// Store the hard state.
    fn set_hard_state(&self, hs: &HardState) -> Result<(), LogError>;

    /// Store the membership.
    fn set_conf_state(&self, cs: &ConfState) -> Result<(), LogError>;

    /// Install a snapshot received from the leader: it replaces the whole log.
    fn apply_snapshot(&self, snap: &Snapshot) -> Result<(), LogError>;

    /// Keep `snap` (taken locally at an applied index) as the latest snapshot and drop the
    /// entries it covers.
    fn compact_to(&self, snap: &Snapshot) -> Result<(), LogError>;

    /// Write `snap`'s data where [`RaftStorage::compact_to`] will look for it, from any thread
    /// (off the node's loop); nothing points at it until `compact_to`. Default: nothing to do.
    fn stage_snapshot(&self, _snap: &Snapshot) -> Result<(), LogError> {
        Ok(())
    }

    /// The node finished step `s` of installing a snapshot: run the test hook, if any.
    fn install_step(&self, _s: crate::fault::InstallStep) -> Result<(), LogError> {
        Ok(())
    }

    /// Make every write so far durable.
    fn flush(&self) -> impl Future<Output = Result<(), LogError>> + Send;

    /// The head address book (id -> host:port), as persisted.
    fn peers(&self) -> Result<BTreeMap<u64, String>, LogError>;

    /// Persist the head address book.
    fn set_peers(&self, peers: &BTreeMap<u64, String>) -> Result<(), LogError>;
}
