//! The Raft-replicated command log. [`RaftLog`] implements [`CommandLog`] over raft-rs 0.7:
//! one task ([`node`]) owns the `RawNode` and reads one mailbox ([`mailbox`]); entries, hard
//! state, conf state and snapshots live behind [`storage::RaftStorage`] (sled in production);
//! heads talk through a [`transport::Transport`] (the `xnai.v1.Peer` gRPC service, [`peer`], in
//! production; an in-process network in the simulation, [`sim`]).
//!
//! Guarantees: a proposal is acknowledged only after its entry is committed on a majority, flushed
//! to this head's disk and applied here. Proposals that were pending when this head lost the
//! leadership fail with `NotLeader` (UNAVAILABLE): clients retry with the same request id and the
//! state machine's dedup applies the write once. Reads that must be linearizable call
//! [`CommandLog::read_barrier`], which runs raft's ReadIndex (the leader confirms it still leads
//! with a heartbeat round to a quorum, then waits until it has applied up to the commit index it
//! had when the read arrived); no clock-based lease is used.

mod apply;
pub mod chunks;
mod codec;
mod hooks;
mod logger;
pub(crate) mod mailbox;
mod node;
pub mod peer;
mod raftlog;
mod start;
pub mod storage;
pub mod transport;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod install_tests;
#[cfg(test)]
pub(crate) mod sim;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raft::StateRole;

use crate::log::EffectsSender;

pub use raftlog::{RaftLog, RaftStart};
#[cfg(test)]
pub(crate) use start::StartOptions;

/// Default number of applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// Default time between raft ticks.
pub const DEFAULT_TICK: Duration = Duration::from_millis(100);
/// Default election timeout in ticks (randomised by raft between this and twice this).
pub const DEFAULT_ELECTION_TICK: usize = 6;
/// Default heartbeat interval in ticks.
pub const DEFAULT_HEARTBEAT_TICK: usize = 1;

/// How this head takes part in the group; `main.rs` fills it from flags.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This head's id (non-zero).
    pub id: u64,
    /// Heads refuse peers whose cluster id differs.
    pub cluster_id: String,
    /// The initial group (id -> host:port), this head included; empty: a one-head group.
    pub peers: BTreeMap<u64, String>,
    /// Start empty and wait to be added by the leader (`xnai head add`).
    pub join: bool,
    /// Applied entries between snapshots (0: never).
    pub snapshot_every: u64,
    /// Time between ticks.
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_tick: usize,
    /// Heartbeat interval in ticks.
    pub heartbeat_tick: usize,
    /// Largest snapshot this head accepts from a peer, in bytes.
    pub max_snapshot_bytes: u64,
}

impl RaftConfig {
    /// A one-head group with default timing and no snapshots (tests, embedding).
    pub fn single(id: u64) -> Self {
        Self {
            id,
            cluster_id: "xnai".into(),
            peers: BTreeMap::new(),
            join: false,
            snapshot_every: 0,
            tick: DEFAULT_TICK,
            election_tick: DEFAULT_ELECTION_TICK,
            heartbeat_tick: DEFAULT_HEARTBEAT_TICK,
            max_snapshot_bytes: chunks::DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }
}

/// Where applied batches go: the runtime's bounded channel while this head leads, else nowhere.
/// Sending never blocks the apply loop (a full channel drops and marks it lagged, see
/// [`crate::log::effects`]).
pub type EffectSink = Arc<Mutex<Option<EffectsSender>>>;

/// The head address book (id -> host:port), shared by the node, transport and peer service.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<RwLock<BTreeMap<u64, String>>>);

impl Peers {
    /// The address of head `id`.
    pub fn get(&self, id: u64) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Record head `id`'s address.
    pub fn insert(&self, id: u64, address: String) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, address);
    }

    /// Every known head.
    pub fn all(&self) -> BTreeMap<u64, String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// This head's Raft view, published after every loop turn of the node task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// This head's id.
    pub id: u64,
    /// "leader", "follower", "candidate" or "precandidate".
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Leader id (0: none known).
    pub leader_id: u64,
    /// Leader address, when known.
    pub leader_address: Option<String>,
    /// Leader that has applied an entry of its own term: its state is complete.
    pub leader_ready: bool,
    /// Health: this head leads with quorum (and is ready), or follows a leader it heard from
    /// within an election timeout.
    pub reaches_leader: bool,
    /// Voting members, sorted.
    pub voters: Vec<u64>,
    /// Process id.
    pub pid: u32,
    /// This head's address.
    pub address: String,
}

/// The wire name of a raft role.
pub fn role_name(role: StateRole) -> &'static str {
    match role {
        StateRole::Leader => "leader",
        StateRole::Follower => "follower",
        StateRole::Candidate => "candidate",
        StateRole::PreCandidate => "precandidate",
    }
}

/// Parse `1=host:port,2=host:port` (the `--peers` flag).
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("bad peer {part:?}: expected ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("bad peer id in {part:?}: expected a positive integer"))?;
        if id == 0 {
            return Err(format!("bad peer {part:?}: ids start at 1"));
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("peer id {id} given twice"));
        }
    }
    Ok(out)
}
