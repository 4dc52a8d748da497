//! A snapshot install interrupted after each step ([`InstallStep`]) on sled: reopening the data
//! directory finds either the old snapshot and log or the new snapshot with no log, consistent
//! enough for raft to start on, and no stray snapshot files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{RawNode, Storage};

use super::{RaftStorage, SledStorage};
use crate::fault::InstallStep;
use crate::log::LogError;
use crate::raft::codec::{decode_snapshot, encode_snapshot};
use crate::raft::logger;
use crate::state::ControlState;

fn open(dir: &Path) -> SledStorage {
    let db = sled::Config::new().path(dir).open().expect("open sled");
    SledStorage::open(db, &dir.join("snaps")).expect("open storage")
}

/// Snapshot data whose address book names `marker`, so old and new are told apart.
fn snapshot(index: u64, term: u64, marker: &str) -> Snapshot {
    let peers = BTreeMap::from([(9, marker.to_string())]);
    let mut snap = Snapshot::default();
    snap.set_data(
        encode_snapshot(index, &ControlState::default(), &peers)
            .expect("encode")
            .into(),
    );
    let m = snap.mut_metadata();
    m.index = index;
    m.term = term;
    m.set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
    snap
}

/// A store with entries 1..=8 (term 1), commit 8, and a local snapshot at 5 ("old").
fn old_state(dir: &Path) {
    let s = open(dir);
    s.set_conf_state(&ConfState::from((vec![1, 2, 3], vec![])))
        .expect("conf");
    let ents: Vec<Entry> = (1..=8)
        .map(|i| Entry {
            index: i,
            term: 1,
            data: vec![i as u8; 16].into(),
            ..Default::default()
        })
        .collect();
    s.append(&ents).expect("append");
    s.set_hard_state(&HardState {
        term: 1,
        commit: 8,
        vote: 1,
        ..Default::default()
    })
    .expect("hard state");
    s.compact_to(&snapshot(5, 1, "old")).expect("compact");
    futures::executor::block_on(s.flush()).expect("flush");
}

/// What a reopened store holds: (snapshot index, its marker, first, last, commit).
fn observe(s: &SledStorage) -> (u64, String, u64, u64, u64) {
    let snap = s.stored_snapshot();
    let data = decode_snapshot(snap.get_metadata().index, snap.get_data()).expect("decodes");
    (
        snap.get_metadata().index,
        data.peers.get(&9).cloned().unwrap_or_default(),
        s.first_index().expect("first"),
        s.last_index().expect("last"),
        s.initial_state().expect("state").hard_state.commit,
    )
}

#[test]
fn an_install_interrupted_after_any_step_reopens_old_or_new() {
    for crash in [
        InstallStep::DataWritten,
        InstallStep::Renamed,
        InstallStep::Switched,
        InstallStep::LogCleared,
    ] {
        tracing::info!(%crash, "--- install, crashing after this step");
        let dir = tempfile::tempdir().expect("tempdir");
        old_state(dir.path());
        {
            let hook: crate::fault::StepHook = Arc::new(move |step| {
                if step == crash {
                    Err(LogError::Failed(format!("injected crash after {step}")))
                } else {
                    Ok(())
                }
            });
            let s = open(dir.path()).with_install_hook(Some(hook));
            let err = s
                .apply_snapshot(&snapshot(20, 2, "new"))
                .expect_err("the hook stops the install");
            assert!(err.to_string().contains("injected"), "{err}");
        }

        tracing::info!(%crash, "--- reopen: old or new, whole");
        let s = open(dir.path());
        let seen = observe(&s);
        let expected = match crash {
            InstallStep::DataWritten | InstallStep::Renamed => (5, "old".to_string(), 6, 8, 8),
            _ => (20, "new".to_string(), 21, 20, 20),
        };
        assert_eq!(seen, expected, "after a crash at {crash}");
        let files = s.files().list();
        assert_eq!(files.len(), 1, "stray files after {crash}: {files:?}");
        let cfg = raft::Config {
            id: 1,
            ..Default::default()
        };
        RawNode::new(&cfg, s.clone(), &logger::logger(1)).expect("raft starts on it");
    }
}

#[test]
fn a_complete_install_replaces_the_log_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    old_state(dir.path());
    {
        let s = open(dir.path());
        s.apply_snapshot(&snapshot(20, 2, "new")).expect("install");
        futures::executor::block_on(s.flush()).expect("flush");
        assert_eq!(observe(&s), (20, "new".to_string(), 21, 20, 20));
    }
    let s = open(dir.path());
    assert_eq!(observe(&s), (20, "new".to_string(), 21, 20, 20));
    assert_eq!(s.files().list().len(), 1);
}

#[test]
fn a_snapshot_kept_inline_by_an_older_version_still_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let tree = db.open_tree("raft_snapshot").expect("tree");
        let bytes = protobuf::Message::write_to_bytes(&snapshot(7, 1, "inline")).expect("pb");
        tree.insert(b"snapshot", bytes).expect("insert");
        db.flush().expect("flush");
    }
    let s = open(dir.path());
    assert_eq!(observe(&s).0, 7);
    assert_eq!(observe(&s).1, "inline");
    s.compact_to(&snapshot(7, 1, "inline"))
        .expect("moves to a file");
    drop(s);
    let s = open(dir.path());
    assert_eq!(observe(&s).1, "inline");
    assert_eq!(s.files().list().len(), 1);
}
