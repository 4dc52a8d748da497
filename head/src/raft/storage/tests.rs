//! One storage test suite, run against raft-rs's `MemStorage` (the reference), our
//! [`SledStorage`] and the simulation's [`MemoryStorage`]: all must answer raft's `Storage`
//! calls the same way.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, Storage, StorageError};

use super::{MemoryStorage, RaftStorage, SledStorage};

/// The writes the suite needs, on top of raft's read-only `Storage`.
trait TestStore: Storage {
    fn put(&self, ents: &[Entry]);
    fn hard_state(&self, hs: HardState);
    fn install(&self, snap: Snapshot);
    /// Drop every entry before `index` (`index` becomes the first one).
    fn compact(&self, index: u64);
}

impl TestStore for MemStorage {
    fn put(&self, ents: &[Entry]) {
        self.wl().append(ents).unwrap();
    }
    fn hard_state(&self, hs: HardState) {
        self.wl().set_hardstate(hs);
    }
    fn install(&self, snap: Snapshot) {
        self.wl().apply_snapshot(snap).unwrap();
    }
    fn compact(&self, index: u64) {
        self.wl().compact(index).unwrap();
    }
}

/// Our stores all get the suite's writes through [`RaftStorage`].
fn our_compact<S: RaftStorage>(s: &S, index: u64) {
    let mut snap = Snapshot::default();
    snap.mut_metadata().index = index - 1;
    snap.mut_metadata().term = s.term(index - 1).unwrap();
    s.compact_to(&snap).unwrap();
}

impl TestStore for MemoryStorage {
    fn put(&self, ents: &[Entry]) {
        self.append(ents).unwrap();
    }
    fn hard_state(&self, hs: HardState) {
        self.set_hard_state(&hs).unwrap();
    }
    fn install(&self, snap: Snapshot) {
        self.apply_snapshot(&snap).unwrap();
    }
    fn compact(&self, index: u64) {
        our_compact(self, index);
    }
}

impl TestStore for SledStorage {
    fn put(&self, ents: &[Entry]) {
        self.append(ents).unwrap();
    }
    fn hard_state(&self, hs: HardState) {
        self.set_hard_state(&hs).unwrap();
    }
    fn install(&self, snap: Snapshot) {
        self.apply_snapshot(&snap).unwrap();
    }
    fn compact(&self, index: u64) {
        our_compact(self, index);
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; 10].into(),
        ..Default::default()
    }
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn compacted<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Compacted)))
}

fn suite<S: TestStore>(make: impl Fn() -> S) {
    // Empty.
    let s = make();
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 0);
    assert_eq!(s.initial_state().unwrap().hard_state, HardState::default());

    // Append, read, terms, size limits.
    s.put(&(1..=5).map(|i| entry(i, 1)).collect::<Vec<_>>());
    assert_eq!(s.last_index().unwrap(), 5);
    assert_eq!(s.term(3).unwrap(), 1);
    let got = s.entries(2, 5, None, ctx()).unwrap();
    assert_eq!(
        got.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let one = s.entries(2, 5, Some(1), ctx()).unwrap();
    assert_eq!(one.len(), 1, "at least one entry even over the size limit");

    // Overwrite a suffix with a newer term.
    s.put(&[entry(3, 2), entry(4, 2)]);
    assert_eq!(s.last_index().unwrap(), 4);
    assert_eq!(s.term(3).unwrap(), 2);
    assert_eq!(s.term(2).unwrap(), 1);

    // Hard state.
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 3,
        ..Default::default()
    };
    s.hard_state(hs.clone());
    assert_eq!(s.initial_state().unwrap().hard_state, hs);

    // Compaction.
    s.compact(3);
    assert_eq!(s.first_index().unwrap(), 3);
    assert_eq!(s.last_index().unwrap(), 4);
    assert!(compacted(s.entries(1, 3, None, ctx())));
    assert_eq!(s.entries(3, 5, None, ctx()).unwrap().len(), 2);
    assert_eq!(s.term(4).unwrap(), 2);

    // A snapshot from the leader replaces the log.
    let mut snap = Snapshot::default();
    snap.mut_metadata().index = 10;
    snap.mut_metadata().term = 3;
    snap.mut_metadata()
        .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
    s.install(snap);
    assert_eq!(s.first_index().unwrap(), 11);
    assert_eq!(s.last_index().unwrap(), 10);
    assert_eq!(s.term(10).unwrap(), 3);
    let st = s.initial_state().unwrap();
    assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
    assert_eq!(st.hard_state.commit, 10);
    assert_eq!(st.hard_state.term, 3);
    s.put(&[entry(11, 3)]);
    assert_eq!(s.last_index().unwrap(), 11);
    assert!(compacted(s.entries(5, 11, None, ctx())));
}

#[test]
fn mem_storage_passes_the_suite() {
    suite(MemStorage::new);
}

#[test]
fn memory_storage_passes_the_suite() {
    suite(MemoryStorage::new);
}

#[test]
fn sled_storage_passes_the_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    suite(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let s = SledStorage::open(db, &dir.path().join("snaps")).unwrap();
        dirs.lock().unwrap().push(dir);
        s
    });
}

#[test]
fn sled_storage_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let s = SledStorage::open(db, &dir.path().join("snaps")).unwrap();
        s.put(&[entry(1, 1), entry(2, 1)]);
        let hs = HardState {
            term: 1,
            commit: 2,
            ..Default::default()
        };
        s.hard_state(hs);
        s.set_conf_state(&ConfState::from((vec![1], vec![])))
            .unwrap();
        futures::executor::block_on(s.flush()).unwrap();
    }
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let s = SledStorage::open(db, &dir.path().join("snaps")).unwrap();
    assert_eq!(s.last_index().unwrap(), 2);
    assert_eq!(s.initial_state().unwrap().hard_state.commit, 2);
    assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1]);
    assert_eq!(
        s.entries(1, 3, None, ctx()).unwrap()[1].data.to_vec(),
        vec![2u8; 10]
    );
}
