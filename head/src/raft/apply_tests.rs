//! The applier without a network: membership entries change the conf state and the address
//! book and come back as [`PeerChanges`] for the node to hand to its transport.

use std::collections::BTreeMap;

use protobuf::Message as _;
use raft::RawNode;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType};
use tokio::sync::watch;

use super::apply::{Applier, PeerChanges};
use super::hooks::Hooks;
use super::storage::{MemoryStorage, RaftStorage};
use super::{Peers, logger};
use crate::log::SharedState;

fn applier() -> Applier {
    Applier {
        state: SharedState::default(),
        applied: 0,
        applied_term: 0,
        applied_tx: watch::channel(0).0,
        effects: Default::default(),
        pending: BTreeMap::new(),
        snapshot_every: 0,
        snapshot_index: 0,
        force_snapshot: false,
        log_bytes: 0,
        snapshot_bytes: 0,
        building: false,
        hooks: Hooks::default(),
    }
}

fn conf_entry(index: u64, kind: ConfChangeType, node: u64, address: &str) -> Entry {
    let mut cc = ConfChange::default();
    cc.set_change_type(kind);
    cc.node_id = node;
    cc.context = address.as_bytes().to_vec().into();
    let mut e = Entry::default();
    e.set_entry_type(EntryType::EntryConfChange);
    e.index = index;
    e.term = 1;
    e.data = cc.write_to_bytes().expect("encode").into();
    e
}

#[test]
fn membership_changes_come_back_to_the_node() {
    let storage = MemoryStorage::new();
    storage
        .set_conf_state(&ConfState::from((vec![1], vec![])))
        .expect("conf state");
    let cfg = raft::Config {
        id: 1,
        ..Default::default()
    };
    let mut raw = RawNode::new(&cfg, storage.clone(), &logger::logger(1)).expect("raw node");
    let peers = Peers::default();
    let mut a = applier();

    tracing::info!("--- add head 2");
    let add = conf_entry(1, ConfChangeType::AddNode, 2, "10.0.0.2:7000");
    let changes = a
        .apply(vec![add], &mut raw, &storage, &peers)
        .expect("applied");
    assert_eq!(
        changes,
        PeerChanges {
            added: vec![(2, Some("10.0.0.2:7000".into()))],
            removed: vec![],
        }
    );
    assert_eq!(storage.conf_state().voters, vec![1, 2]);
    assert_eq!(peers.get(2).as_deref(), Some("10.0.0.2:7000"));
    assert_eq!(
        storage.peers().expect("book").len(),
        1,
        "the book is persisted"
    );
    assert!(a.force_snapshot, "a membership change asks for a snapshot");
    assert_eq!(a.applied, 1);

    tracing::info!("--- adding it again changes nothing");
    let again = conf_entry(2, ConfChangeType::AddNode, 2, "10.0.0.2:7000");
    let changes = a
        .apply(vec![again], &mut raw, &storage, &peers)
        .expect("applied");
    assert_eq!(changes, PeerChanges::default());

    tracing::info!("--- remove head 2");
    let remove = conf_entry(3, ConfChangeType::RemoveNode, 2, "");
    let changes = a
        .apply(vec![remove], &mut raw, &storage, &peers)
        .expect("applied");
    assert_eq!(
        changes,
        PeerChanges {
            added: vec![],
            removed: vec![2],
        }
    );
    assert_eq!(storage.conf_state().voters, vec![1]);
    assert_eq!(a.applied, 3);
}

/// A committed entry whose format version this head does not know.
fn future_entry(index: u64) -> Entry {
    let mut e = Entry::default();
    e.set_entry_type(EntryType::EntryNormal);
    e.index = index;
    e.term = 1;
    let mut data = super::codec::encode_entry(&[]).expect("encode");
    data[1] = super::codec::ENTRY_VERSION + 1;
    e.data = data.into();
    e
}

#[test]
fn an_entry_of_an_unknown_format_is_an_error_not_a_skip() {
    let storage = MemoryStorage::new();
    let cfg = raft::Config {
        id: 1,
        ..Default::default()
    };
    let mut raw = RawNode::new(&cfg, storage.clone(), &logger::logger(1)).expect("raw node");
    let mut a = applier();
    let err = a
        .apply(vec![future_entry(1)], &mut raw, &storage, &Peers::default())
        .expect_err("refused");
    assert!(
        matches!(err, crate::log::LogError::UnknownFormat { index: 1, .. }),
        "{err}"
    );
    assert_eq!(a.applied, 0, "the entry is not counted as applied");
}

#[tokio::test]
async fn a_node_that_meets_an_unknown_format_stops_the_head() {
    tracing::info!("--- a one-head log with a committed entry from a newer version");
    let storage = MemoryStorage::new();
    let mut snap = raft::eraftpb::Snapshot::default();
    let meta = snap.mut_metadata();
    meta.index = 1;
    meta.term = 1;
    meta.mut_conf_state().voters = vec![1];
    storage.apply_snapshot(&snap).expect("bootstrap");
    storage.append(&[future_entry(2)]).expect("append");
    let hs = raft::eraftpb::HardState {
        term: 1,
        commit: 2,
        ..Default::default()
    };
    storage.set_hard_state(&hs).expect("hard state");

    tracing::info!("--- starting it stops the node with the cause");
    let supervisor = xnai_proto::supervise::Supervisor::new();
    let net = super::transport::sim::SimNetwork::new(1);
    let started = super::RaftLog::start(
        &super::RaftConfig::single(1),
        storage,
        "sim-1".into(),
        xnai_proto::auth::TokenInject::new("t").expect("token"),
        move |mailbox, _| net.attach(1, mailbox),
        super::StartOptions {
            supervisor: Some(supervisor.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let failure = tokio::time::timeout(std::time::Duration::from_secs(10), supervisor.failed())
        .await
        .expect("the node stops");
    assert!(
        failure.cause.contains("format version 2"),
        "{}",
        failure.cause
    );
    assert_eq!(
        *crate::log::CommandLog::applied(&started.log).borrow(),
        1,
        "the entry was not skipped"
    );
}

/// Measures what the node's loop pays for a snapshot (the clone under the read lock) against
/// what now runs off the loop (the encoding). Run by hand:
/// `cargo nextest run -p xnai-head --run-ignored only snapshot_copy_cost`.
#[test]
#[ignore = "a measurement, not a check"]
fn snapshot_copy_cost() {
    use crate::state::{Command, ControlState, Resources, TaskOptions, TaskSpec};
    use xnai_proto::ids::{SessionId, TaskId, WorkerId};

    let n: u128 = std::env::var("XNAI_SNAPSHOT_COST_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut state = ControlState::default();
    let worker_id = WorkerId(1 << 8);
    let _ = state.apply(Command::RegisterWorker {
        request_id: "w".into(),
        worker_id,
        address: "127.0.0.1:1".into(),
        pid: 7,
        resources: Resources::cpus(4),
        arena_capacity: 1 << 20,
        functions: vec!["echo".into()],
        classes: vec![],
    });
    for i in 1..=n {
        let _ = state.apply(Command::SubmitTask {
            request_id: format!("r{i}"),
            task_id: TaskId(i << 8),
            spec: TaskSpec {
                function: "echo".into(),
                args: vec![],
                options: TaskOptions::default(),
            },
        });
        let _ = state.apply(Command::OpenSession {
            request_id: format!("s{i}"),
            session_id: SessionId(i << 8),
            lease_ms: 60_000,
        });
    }
    let t = std::time::Instant::now();
    let copy = state.clone();
    let clone_time = t.elapsed();
    let t = std::time::Instant::now();
    let data = super::codec::encode_snapshot(1, &copy, &BTreeMap::new()).expect("encode");
    let encode_time = t.elapsed();
    println!(
        "snapshot of {n} tasks + {n} sessions: {} bytes; clone {clone_time:?} (on the loop), encode {encode_time:?} (off the loop)",
        data.len()
    );
}
