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
