//! [`SledStorage`]: the production [`RaftStorage`], raft-rs's [`Storage`] on sled. Entries live
//! in one tree keyed by big-endian index; hard state, conf state and the head address book live
//! in a meta tree; the latest snapshot's metadata and the name of its data file have a tree of
//! their own, and the data a file ([`SnapshotFiles`]). Switching to a new snapshot is one sled
//! transaction over both trees (for a snapshot from the leader: metadata, conf state, hard state
//! and a marker that the old log must go), made after the file is durable; a crash at any point
//! leaves the old snapshot or the new one, and [`SledStorage::open`] finishes the job (clears a
//! marked log, removes stray files). Writes go through the owner task only; each is followed by
//! [`RaftStorage::flush`] (an fsync) before anything that depends on it is sent or acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::RaftStorage;
use super::snapshot_files::{SnapshotFiles, step};

use crate::fault::{InstallStep, StepHook};
use crate::log::LogError;

const HARD_STATE: &[u8] = b"hard_state";
const CONF_STATE: &[u8] = b"conf_state";
const SNAPSHOT: &[u8] = b"snapshot";
/// The name of the latest snapshot's data file (absent: the data is inline, as written before
/// snapshot files existed).
const SNAPSHOT_FILE: &[u8] = b"snapshot_file";
/// Set in the switch to a snapshot from the leader, removed once the old log is cleared: if
/// present at open, the log is cleared then.
const REPLACING_LOG: &[u8] = b"replacing_log";
const PEERS: &[u8] = b"peers";

/// What the storage caches in memory (read on every raft call).
#[derive(Default)]
struct Cache {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Index of the last stored entry (or the snapshot's, when there are none).
    last_index: u64,
}

/// Raft log storage on sled. Cloning shares the same trees.
#[derive(Clone)]
pub struct SledStorage {
    db: sled::Db,
    entries: sled::Tree,
    meta: sled::Tree,
    snapshots: sled::Tree,
    files: SnapshotFiles,
    cache: Arc<RwLock<Cache>>,
    /// Test hook run after each step of a snapshot install (`XNAI_TEST_RAFT_FAULT` or a test).
    hook: Option<StepHook>,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn corrupt(index: u64, reason: impl ToString) -> LogError {
    LogError::Corrupt {
        index,
        reason: reason.to_string(),
    }
}

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

fn encode_pb(what: &'static str, m: &impl protobuf::Message) -> Result<Vec<u8>, LogError> {
    m.write_to_bytes().map_err(|e| LogError::Encode {
        what,
        reason: e.to_string(),
    })
}

impl SledStorage {
    /// Open the raft trees in `db` (snapshot files under `snapshot_dir`), finish a snapshot
    /// switch a crash interrupted, and load the cached state.
    pub fn open(db: sled::Db, snapshot_dir: &Path) -> Result<Self, LogError> {
        let entries = db.open_tree("raft_entries")?;
        let meta = db.open_tree("raft_meta")?;
        let snapshots = db.open_tree("raft_snapshot")?;
        let files = SnapshotFiles::open(snapshot_dir)?;
        let mut cache = Cache::default();
        if let Some(b) = meta.get(HARD_STATE)? {
            cache.hard_state = HardState::parse_from_bytes(&b).map_err(|e| corrupt(0, e))?;
        }
        if let Some(b) = meta.get(CONF_STATE)? {
            cache.conf_state = ConfState::parse_from_bytes(&b).map_err(|e| corrupt(0, e))?;
        }
        // Data directories written before the snapshot had its own tree keep it in `meta`.
        if let Some(b) = snapshots.get(SNAPSHOT)?.or(meta.get(SNAPSHOT)?) {
            cache.snapshot = Snapshot::parse_from_bytes(&b).map_err(|e| corrupt(0, e))?;
        }
        let file = match snapshots.get(SNAPSHOT_FILE)? {
            Some(b) => Some(String::from_utf8(b.to_vec()).map_err(|e| corrupt(0, e))?),
            None => None,
        };
        if let Some(name) = &file {
            cache.snapshot.set_data(files.read(name)?.into());
        }
        files.clean(file.as_deref(), true);
        let snap_index = cache.snapshot.get_metadata().index;
        if meta.get(REPLACING_LOG)?.is_some() {
            // A snapshot from the leader was switched to, but its old log not yet cleared.
            entries.clear()?;
            meta.remove(REPLACING_LOG)?;
            db.flush()?;
            tracing::info!(
                index = snap_index,
                "finished installing a snapshot after a restart"
            );
        }
        cache.last_index = match entries.last()? {
            Some((k, _)) => <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt(0, "bad entry key"))?
                .max(snap_index),
            None => snap_index,
        };
        Ok(Self {
            db,
            entries,
            meta,
            snapshots,
            files,
            cache: Arc::new(RwLock::new(cache)),
            hook: None,
        })
    }

    /// Run `hook` after each step of a snapshot install (tests and the fault hook).
    pub fn with_install_hook(mut self, hook: Option<StepHook>) -> Self {
        self.hook = hook;
        self
    }

    /// The snapshot files (tests).
    #[cfg(test)]
    pub(crate) fn files(&self) -> &SnapshotFiles {
        &self.files
    }

    fn read<R>(&self, f: impl FnOnce(&Cache) -> R) -> R {
        f(&self.cache.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write<R>(&self, f: impl FnOnce(&mut Cache) -> R) -> R {
        f(&mut self.cache.write().unwrap_or_else(|p| p.into_inner()))
    }

    fn first(&self) -> u64 {
        self.read(|c| c.snapshot.get_metadata().index + 1)
    }
}

/// What a snapshot switch writes besides the snapshot itself (a snapshot from the leader).
struct Replace<'a> {
    conf_state: &'a ConfState,
    hard_state: &'a HardState,
}

impl SledStorage {
    /// Make `snap` the latest snapshot: its data file first (durable), then one transaction
    /// over the snapshot and meta trees (metadata and file name; with `replace`, also the conf
    /// state, the hard state and the marker that the old log must go), then flush.
    fn switch_to(
        &self,
        snap: &Snapshot,
        replace: Option<Replace<'_>>,
        hook: Option<&StepHook>,
    ) -> Result<String, LogError> {
        let m = snap.get_metadata();
        let name = SnapshotFiles::name(m.index, m.term);
        self.files.write(&name, snap.get_data(), hook)?;
        let mut head = snap.clone();
        head.set_data(Default::default());
        let head = encode_pb("snapshot", &head)?;
        let replace = match replace {
            Some(r) => Some((
                encode_pb("conf state", r.conf_state)?,
                encode_pb("hard state", r.hard_state)?,
            )),
            None => None,
        };
        (&self.snapshots, &self.meta)
            .transaction(|(snaps, meta)| {
                snaps.insert(SNAPSHOT, head.as_slice())?;
                snaps.insert(SNAPSHOT_FILE, name.as_bytes())?;
                meta.remove(SNAPSHOT)?;
                if let Some((cs, hs)) = &replace {
                    meta.insert(CONF_STATE, cs.as_slice())?;
                    meta.insert(HARD_STATE, hs.as_slice())?;
                    meta.insert(REPLACING_LOG, &[1u8][..])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => LogError::Storage(e),
                TransactionError::Abort(()) => corrupt(m.index, "snapshot switch aborted"),
            })?;
        self.db.flush()?;
        Ok(name)
    }
}

impl RaftStorage for SledStorage {
    /// Whether anything was ever stored (a hard state, a conf state or a snapshot).
    fn is_initialized(&self) -> bool {
        self.read(|c| {
            c.hard_state != HardState::default()
                || c.conf_state != ConfState::default()
                || c.snapshot.get_metadata().index > 0
        })
    }

    /// The latest snapshot (metadata and data).
    fn stored_snapshot(&self) -> Snapshot {
        self.read(|c| c.snapshot.clone())
    }

    /// The current membership.
    fn conf_state(&self) -> ConfState {
        self.read(|c| c.conf_state.clone())
    }

    /// Append `ents`, replacing any stored entries at or after the first one's index.
    fn append(&self, ents: &[Entry]) -> Result<(), LogError> {
        let Some(first) = ents.first() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        let old_last = self.read(|c| c.last_index);
        for i in first.index..=old_last {
            batch.remove(&key(i));
        }
        for e in ents {
            batch.insert(&key(e.index), encode_pb("raft entry", e)?);
        }
        self.entries.apply_batch(batch)?;
        let last = ents.last().map_or(first.index, |e| e.index);
        self.write(|c| c.last_index = last);
        Ok(())
    }

    /// Store the hard state.
    fn set_hard_state(&self, hs: &HardState) -> Result<(), LogError> {
        self.meta.insert(HARD_STATE, encode_pb("hard state", hs)?)?;
        self.write(|c| c.hard_state = hs.clone());
        Ok(())
    }

    /// Store the membership.
    fn set_conf_state(&self, cs: &ConfState) -> Result<(), LogError> {
        self.meta.insert(CONF_STATE, encode_pb("conf state", cs)?)?;
        self.write(|c| c.conf_state = cs.clone());
        Ok(())
    }

    /// Install a snapshot received from the leader: it replaces the whole log. Steps (each one
    /// reported to the test hook): data file written, renamed, switched (one transaction, with
    /// the conf and hard state), old log cleared.
    fn apply_snapshot(&self, snap: &Snapshot) -> Result<(), LogError> {
        let meta = snap.get_metadata();
        let mut hs = self.read(|c| c.hard_state.clone());
        hs.term = hs.term.max(meta.term);
        hs.commit = meta.index;
        let hook = self.hook.as_ref();
        let replace = Replace {
            conf_state: meta.get_conf_state(),
            hard_state: &hs,
        };
        let name = self.switch_to(snap, Some(replace), hook)?;
        self.write(|c| {
            c.snapshot = snap.clone();
            c.conf_state = meta.get_conf_state().clone();
            c.hard_state = hs.clone();
            c.last_index = meta.index;
        });
        step(hook, InstallStep::Switched)?;
        self.entries.clear()?;
        self.meta.remove(REPLACING_LOG)?;
        self.files.clean(Some(&name), false);
        step(hook, InstallStep::LogCleared)
    }

    /// Keep `snap` (taken locally at an applied index) as the latest snapshot and drop the
    /// entries it covers. Its data file may have been written ahead ([`RaftStorage::stage_snapshot`]).
    fn compact_to(&self, snap: &Snapshot) -> Result<(), LogError> {
        let index = snap.get_metadata().index;
        let name = self.switch_to(snap, None, None)?;
        let mut trim = sled::Batch::default();
        for k in self.entries.range(..=key(index)).keys() {
            trim.remove(k?);
        }
        self.entries.apply_batch(trim)?;
        self.write(|c| {
            c.snapshot = snap.clone();
            c.last_index = c.last_index.max(index);
        });
        self.files.clean(Some(&name), false);
        Ok(())
    }

    /// Write `snap`'s data file ahead of [`RaftStorage::compact_to`] (any thread).
    fn stage_snapshot(&self, snap: &Snapshot) -> Result<(), LogError> {
        let m = snap.get_metadata();
        self.files
            .write(&SnapshotFiles::name(m.index, m.term), snap.get_data(), None)
    }

    /// Run the install test hook after a step the node takes (the state machine's).
    fn install_step(&self, s: InstallStep) -> Result<(), LogError> {
        step(self.hook.as_ref(), s)
    }

    /// Make every write so far durable (fsync).
    fn flush(&self) -> impl std::future::Future<Output = Result<(), LogError>> + Send {
        let db = self.db.clone();
        async move {
            db.flush_async().await?;
            Ok(())
        }
    }

    /// The head address book (id -> host:port), as persisted.
    fn peers(&self) -> Result<BTreeMap<u64, String>, LogError> {
        match self.meta.get(PEERS)? {
            None => Ok(BTreeMap::new()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| corrupt(0, e)),
        }
    }

    /// Persist the head address book.
    fn set_peers(&self, peers: &BTreeMap<u64, String>) -> Result<(), LogError> {
        let bytes = serde_json::to_vec(peers).map_err(|e| LogError::Encode {
            what: "peers",
            reason: e.to_string(),
        })?;
        self.meta.insert(PEERS, bytes)?;
        Ok(())
    }
}

impl Storage for SledStorage {
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
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = self.read(|c| c.last_index);
        if high > last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut out = Vec::new();
        let mut size = 0u64;
        for item in self.entries.range(key(low)..key(high)) {
            let (_, v) = item.map_err(store_err)?;
            let e = Entry::parse_from_bytes(&v).map_err(store_err)?;
            size += u64::from(e.compute_size());
            if !out.is_empty() && max_size.is_some_and(|m| size > m) {
                break;
            }
            out.push(e);
        }
        if out.len() as u64 != high - low && max_size.is_none() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (snap_index, snap_term, last) = self.read(|c| {
            let m = c.snapshot.get_metadata();
            (m.index, m.term, c.last_index)
        });
        if idx == snap_index {
            return Ok(snap_term);
        }
        if idx < snap_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let bytes = self
            .entries
            .get(key(idx))
            .map_err(store_err)?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Ok(Entry::parse_from_bytes(&bytes).map_err(store_err)?.term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read(|c| c.last_index))
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.stored_snapshot();
        if snap.get_metadata().index < request_index || snap.get_metadata().index == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}
