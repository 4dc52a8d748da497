//! [`MemoryStorage`]: the in-memory fake [`RaftStorage`] the simulation runs on (sled's fsync
//! and background threads would make hundreds of seeds too slow). Same semantics as
//! [`super::SledStorage`], checked by the shared suite; clones share the data, so a "crashed"
//! node restarts from what it had written.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use super::RaftStorage;
use crate::log::LogError;

#[derive(Default)]
struct Inner {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Entries after the snapshot: `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
    peers: BTreeMap<u64, String>,
}

impl Inner {
    fn snap_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn last(&self) -> u64 {
        self.snap_index() + self.entries.len() as u64
    }
}

/// Raft log storage in memory. Cloning shares the same data. Thread-safe.
#[derive(Clone, Default)]
pub(crate) struct MemoryStorage(Arc<RwLock<Inner>>);

impl MemoryStorage {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn read<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        f(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.0.write().unwrap_or_else(|p| p.into_inner()))
    }
}

impl RaftStorage for MemoryStorage {
    fn is_initialized(&self) -> bool {
        self.read(|c| {
            c.hard_state != HardState::default()
                || c.conf_state != ConfState::default()
                || c.snap_index() > 0
        })
    }

    fn stored_snapshot(&self) -> Snapshot {
        self.read(|c| c.snapshot.clone())
    }

    fn conf_state(&self) -> ConfState {
        self.read(|c| c.conf_state.clone())
    }

    fn append(&self, ents: &[Entry]) -> Result<(), LogError> {
        let Some(first) = ents.first() else {
            return Ok(());
        };
        self.write(|c| {
            let (snap, last) = (c.snap_index(), c.last());
            if first.index <= snap || first.index > last + 1 {
                return Err(LogError::Corrupt {
                    index: first.index,
                    reason: format!(
                        "append leaves a gap or rewrites the snapshot (log {snap}..={last})"
                    ),
                });
            }
            c.entries.truncate((first.index - snap - 1) as usize);
            c.entries.extend_from_slice(ents);
            Ok(())
        })
    }

    fn set_hard_state(&self, hs: &HardState) -> Result<(), LogError> {
        self.write(|c| c.hard_state = hs.clone());
        Ok(())
    }

    fn set_conf_state(&self, cs: &ConfState) -> Result<(), LogError> {
        self.write(|c| c.conf_state = cs.clone());
        Ok(())
    }

    fn apply_snapshot(&self, snap: &Snapshot) -> Result<(), LogError> {
        self.write(|c| {
            let meta = snap.get_metadata();
            c.entries.clear();
            c.conf_state = meta.get_conf_state().clone();
            c.hard_state.term = c.hard_state.term.max(meta.term);
            c.hard_state.commit = meta.index;
            c.snapshot = snap.clone();
        });
        Ok(())
    }

    fn compact_to(&self, snap: &Snapshot) -> Result<(), LogError> {
        self.write(|c| {
            let index = snap.get_metadata().index;
            let drop = index
                .saturating_sub(c.snap_index())
                .min(c.entries.len() as u64);
            // What stays starts right after the new snapshot (or nothing, when it is past the
            // last entry), as the layout requires.
            c.entries.drain(..drop as usize);
            c.snapshot = snap.clone();
        });
        Ok(())
    }

    fn flush(&self) -> impl std::future::Future<Output = Result<(), LogError>> + Send {
        std::future::ready(Ok(()))
    }

    fn peers(&self) -> Result<BTreeMap<u64, String>, LogError> {
        Ok(self.read(|c| c.peers.clone()))
    }

    fn set_peers(&self, peers: &BTreeMap<u64, String>) -> Result<(), LogError> {
        self.write(|c| c.peers = peers.clone());
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.read(|c| RaftState::new(c.hard_state.clone(), c.conf_state.clone())))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into();
        self.read(|c| {
            if low <= c.snap_index() {
                return Err(raft::Error::Store(StorageError::Compacted));
            }
            if high > c.last() + 1 || low > high {
                return Err(raft::Error::Store(StorageError::Unavailable));
            }
            let from = (low - c.snap_index() - 1) as usize;
            let to = (high - c.snap_index() - 1) as usize;
            let mut out = Vec::with_capacity(to - from);
            let mut size = 0u64;
            for e in &c.entries[from..to] {
                size += u64::from(protobuf::Message::compute_size(e));
                if !out.is_empty() && max_size.is_some_and(|m| size > m) {
                    break;
                }
                out.push(e.clone());
            }
            Ok(out)
        })
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.read(|c| {
            let snap = c.snap_index();
            if idx == snap {
                return Ok(c.snapshot.get_metadata().term);
            }
            if idx < snap {
                return Err(raft::Error::Store(StorageError::Compacted));
            }
            if idx > c.last() {
                return Err(raft::Error::Store(StorageError::Unavailable));
            }
            Ok(c.entries[(idx - snap - 1) as usize].term)
        })
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read(|c| c.snap_index() + 1))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read(Inner::last))
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.stored_snapshot();
        let index = snap.get_metadata().index;
        if index < request_index || index == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}
