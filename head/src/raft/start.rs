//! Starting a head's Raft log: open sled, bootstrap a new group (a snapshot at index 1 holding
//! the initial membership, so a head added later always catches up by snapshot first), recover
//! the state from the latest snapshot (raft then replays the committed entries after it), and
//! spawn the node task. [`RaftLog::start`] is generic over the storage and the transport, so the
//! simulation runs this very code over memory and an in-process network.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use raft::eraftpb::Snapshot;
use raft::{RawNode, ReadOnlyOption};
use tokio::sync::{mpsc, watch};
use xnai_proto::auth::TokenInject;
use xnai_proto::supervise::Supervisor;

use super::apply::Applier;
use super::codec::{decode_snapshot, encode_snapshot};
use super::hooks::Hooks;
use super::mailbox::Msg;
use super::node::Node;
use super::peer::PeerApi;
use super::raftlog::{QUEUE, RaftLog, RaftStart};
use super::storage::{RaftStorage, SledStorage};
use super::transport::Transport;
use super::transport::grpc::GrpcTransport;
use super::{EffectSink, NodeStatus, Peers, RaftConfig, logger};
use crate::log::{LogError, SharedState};
use crate::state::ControlState;

/// Bytes of sled page cache a head keeps (its RSS grew toward sled's 1 GiB default).
pub const SLED_CACHE_BYTES: u64 = 64 << 20;

/// The directory (under the data directory) of snapshot data files.
pub const SNAPSHOT_DIR: &str = "raft-snapshots";

/// What a test may change when starting a node; production uses the defaults.
#[derive(Clone, Default)]
pub(crate) struct StartOptions {
    /// Test-only observation and fault points.
    pub(crate) hooks: Hooks,
    /// Use exactly this election timeout (in ticks) instead of raft's random one in
    /// `[election_tick, 2 * election_tick)`: raft draws it from an unseeded RNG, so a
    /// simulation that must replay from its seed picks each head's timeout itself.
    pub(crate) fixed_election_tick: Option<usize>,
    /// Build snapshots as tokio tasks, not on the blocking pool (the simulation, so a seed
    /// replays on paused time).
    pub(crate) build_in_task: bool,
    /// Spawn the node task under this supervisor (production: a dead node stops the head);
    /// without one (simulation) a failed node only logs why.
    pub(crate) supervisor: Option<Supervisor>,
}

fn bootstrap<S: RaftStorage>(cfg: &RaftConfig, storage: &S, peers: &Peers) -> Result<(), LogError> {
    let voters: Vec<u64> = if cfg.peers.is_empty() {
        vec![cfg.id]
    } else {
        cfg.peers.keys().copied().collect()
    };
    if !voters.contains(&cfg.id) {
        return Err(LogError::Membership(format!(
            "--peers does not list this head's id {} (use --join to join a running group)",
            cfg.id
        )));
    }
    let mut snap = Snapshot::default();
    snap.set_data(encode_snapshot(1, &ControlState::default(), &peers.all())?.into());
    let meta = snap.mut_metadata();
    meta.index = 1;
    meta.term = 1;
    meta.mut_conf_state().voters = voters.clone();
    storage.apply_snapshot(&snap)?;
    tracing::info!(id = cfg.id, ?voters, "bootstrapped a new raft group");
    Ok(())
}

impl RaftLog {
    /// Open (or create) the raft storage under `data_dir` and start the node task (needs a
    /// tokio runtime) under `supervisor`: if it panics or stops on a storage error, the
    /// supervisor records why and the head exits. `address` is where this head serves; `token`
    /// authenticates peer calls.
    pub async fn open(
        cfg: &RaftConfig,
        data_dir: &Path,
        address: String,
        token: TokenInject,
        supervisor: &Supervisor,
    ) -> Result<RaftStart, LogError> {
        // The control state lives in memory already; sled's page cache (1 GiB by default) only
        // speeds up reading log entries back, which followers and restarts do rarely.
        let db = sled::Config::new()
            .path(data_dir)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()?;
        let storage = SledStorage::open(db, &data_dir.join(SNAPSHOT_DIR))?
            .with_install_hook(crate::fault::install_hook(cfg.id));
        let (id, cluster_id, me) = (cfg.id, cfg.cluster_id.clone(), address.clone());
        let inject = token.clone();
        let transport =
            move |node, peers| GrpcTransport::new(id, cluster_id, me, peers, inject, node);
        Self::start(
            cfg,
            storage,
            address,
            token,
            transport,
            StartOptions {
                supervisor: Some(supervisor.clone()),
                ..StartOptions::default()
            },
        )
        .await
    }

    /// Start a node on `storage` (bootstrapping it if empty) that reaches its peers through the
    /// transport `transport` builds from the node's mailbox and the address book.
    pub(crate) async fn start<S: RaftStorage, T: Transport>(
        cfg: &RaftConfig,
        storage: S,
        address: String,
        token: TokenInject,
        transport: impl FnOnce(mpsc::Sender<Msg>, Peers) -> T,
        options: StartOptions,
    ) -> Result<RaftStart, LogError> {
        let peers = Peers::default();
        for (id, a) in storage.peers()?.into_iter().chain(cfg.peers.clone()) {
            peers.insert(id, a);
        }
        peers.insert(cfg.id, address.clone());
        storage.set_peers(&peers.all())?;
        if !storage.is_initialized() {
            if cfg.join {
                tracing::info!(id = cfg.id, "empty storage: waiting to be added to a group");
            } else {
                bootstrap(cfg, &storage, &peers)?;
            }
        }
        storage.flush().await?;
        let snap = storage.stored_snapshot();
        let meta = snap.get_metadata();
        let data = decode_snapshot(meta.index, snap.get_data())?;
        for (id, a) in data.peers {
            if peers.get(id).is_none() {
                peers.insert(id, a);
            }
        }
        let mut raft_cfg = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            applied: meta.index,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            ..Default::default()
        };
        if let Some(ticks) = options.fixed_election_tick {
            raft_cfg.election_tick = ticks;
            raft_cfg.min_election_tick = ticks;
            raft_cfg.max_election_tick = ticks + 1;
        }
        raft_cfg
            .validate()
            .map_err(|e| LogError::Membership(format!("bad raft settings: {e}")))?;
        let raw =
            RawNode::new(&raft_cfg, storage.clone(), &logger::logger(cfg.id)).map_err(|e| {
                LogError::Corrupt {
                    index: meta.index,
                    reason: format!("cannot start raft: {e}"),
                }
            })?;
        let state = SharedState::new(data.state);
        let (applied_tx, applied) = watch::channel(meta.index);
        let (status_tx, status) = watch::channel(NodeStatus {
            id: cfg.id,
            address: address.clone(),
            pid: std::process::id(),
            voters: storage.conf_state().voters,
            ..Default::default()
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let effects: EffectSink = Default::default();
        let transport = transport(tx.clone(), peers.clone());
        let node = Node {
            raw,
            storage,
            applier: Applier {
                state: state.clone(),
                applied: meta.index,
                applied_term: meta.term,
                applied_tx,
                effects: effects.clone(),
                pending: BTreeMap::new(),
                snapshot_every: cfg.snapshot_every,
                snapshot_index: meta.index,
                force_snapshot: false,
                log_bytes: 0,
                snapshot_bytes: snap.get_data().len() as u64,
                building: false,
                hooks: options.hooks,
            },
            transport,
            peers: peers.clone(),
            status: status_tx,
            reads: Default::default(),
            read_seq: 0,
            pid: std::process::id(),
            mailbox: tx.downgrade(),
            built: None,
            build_in_task: options.build_in_task,
            build_task: None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let run = node.run(rx, stop_rx, cfg.tick);
        let handle = match &options.supervisor {
            Some(supervisor) => supervisor.spawn("raft node", run),
            None => tokio::spawn(async move {
                if let Err(e) = run.await {
                    tracing::error!(error = %e, "raft node stopped");
                }
            }),
        };
        let peer = PeerApi::new(
            cfg.id,
            cfg.cluster_id.clone(),
            tx.clone(),
            status.clone(),
            cfg.max_snapshot_bytes,
        );
        let log = RaftLog {
            id: cfg.id,
            cluster_id: cfg.cluster_id.clone(),
            tx,
            state,
            applied,
            status,
            effects,
            peers,
            token,
            stop,
            owner: Mutex::new(Some(handle)),
        };
        Ok(RaftStart { log, peer })
    }
}
