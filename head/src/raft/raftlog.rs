//! [`RaftLog`]: the handle services and the runtime use ([`CommandLog`]), and its start-up:
//! open sled, bootstrap a new group (a snapshot at index 1 holding the initial membership, so
//! a head added later always catches up by snapshot first), recover the state from the latest
//! snapshot (raft then replays the committed entries after it), and start the node task.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use raft::eraftpb::{ConfChange, ConfChangeType, Snapshot};
use raft::{RawNode, ReadOnlyOption};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use xnai_proto::auth::TokenInject;
use xnai_proto::supervise::Supervisor;

use super::apply::{Applier, decode_snapshot, encode_snapshot};
use super::node::{Msg, Node};
use super::peer::{PeerApi, identify, peer_status};
use super::storage::SledStorage;
use super::transport::Transport;
use super::{EffectSink, NodeStatus, Peers, RaftConfig, logger};
use crate::log::{AppliedBatch, CommandLog, HeadInfo, Leadership, LogError, SharedState};
use crate::state::{Command, ControlState, Outcome};

/// Messages that may wait for the node task before callers feel backpressure.
const QUEUE: usize = 16_384;
/// How long a ReadIndex may take (an election in between makes it fail).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a membership change may take to commit.
const CONF_TIMEOUT: Duration = Duration::from_secs(10);

/// The Raft-replicated [`CommandLog`]. Share it behind an `Arc`.
pub struct RaftLog {
    id: u64,
    cluster_id: String,
    tx: mpsc::Sender<Msg>,
    state: SharedState,
    applied: watch::Receiver<u64>,
    status: watch::Receiver<NodeStatus>,
    effects: EffectSink,
    peers: Peers,
    token: TokenInject,
    stop: watch::Sender<bool>,
    owner: Mutex<Option<JoinHandle<()>>>,
}

/// A started log and the peer service that feeds it.
pub struct RaftStart {
    /// The log.
    pub log: RaftLog,
    /// The `xnai.v1.Peer` handlers to serve.
    pub peer: PeerApi,
}

fn bootstrap(cfg: &RaftConfig, storage: &SledStorage, peers: &Peers) -> Result<(), LogError> {
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
    /// supervisor records why and the head exits. `address` is where this head serves;
    /// `token` authenticates peer calls.
    pub async fn open(
        cfg: &RaftConfig,
        data_dir: &Path,
        address: String,
        token: TokenInject,
        supervisor: &Supervisor,
    ) -> Result<RaftStart, LogError> {
        let db = sled::Config::new().path(data_dir).open()?;
        let storage = SledStorage::open(db)?;
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
        let raft_cfg = raft::Config {
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
        let transport = Transport::new(
            cfg.id,
            cfg.cluster_id.clone(),
            address,
            peers.clone(),
            token.clone(),
            tx.clone(),
        );
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
            },
            transport,
            peers: peers.clone(),
            status: status_tx,
            reads: Default::default(),
            read_seq: 0,
            pid: std::process::id(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let handle = supervisor.spawn("raft node", node.run(rx, stop_rx, cfg.tick));
        let peer = PeerApi::new(cfg.id, cfg.cluster_id.clone(), tx.clone(), status.clone());
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

    /// This head's Raft view; changes after every node loop turn that changed it.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// Where applied batches go: the runtime's channel while this head leads.
    pub fn set_effects(&self, sink: Option<mpsc::UnboundedSender<AppliedBatch>>) {
        *self.effects.lock().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    async fn conf_change(tx: mpsc::Sender<Msg>, change: ConfChange) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        tx.send(Msg::ConfChange { change, reply })
            .await
            .map_err(|_| LogError::Closed)?;
        match tokio::time::timeout(CONF_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(LogError::Closed),
            Err(_) => Err(LogError::Membership(
                "the change did not commit in time (is a majority of heads up?)".into(),
            )),
        }
    }

    async fn read_index(tx: mpsc::Sender<Msg>) -> Result<u64, LogError> {
        let (reply, rx) = oneshot::channel();
        tx.send(Msg::ReadIndex(reply))
            .await
            .map_err(|_| LogError::Closed)?;
        match tokio::time::timeout(READ_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(LogError::Closed),
            Err(_) => Err(LogError::NotLeader { leader: None }),
        }
    }
}

impl CommandLog for RaftLog {
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> BoxFuture<'static, Result<Vec<Outcome>, LogError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            if commands.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, rx) = oneshot::channel();
            tx.send(Msg::Propose { commands, reply })
                .await
                .map_err(|_| LogError::Closed)?;
            rx.await.map_err(|_| LogError::Closed)?
        })
    }

    fn state(&self) -> &SharedState {
        &self.state
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        self.stop.send_replace(true);
        let handle = self.owner.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            if let Some(h) = handle {
                let _ = h.await;
            }
        })
    }

    fn leadership(&self) -> Leadership {
        if self.status.has_changed().is_err() {
            // The node task is gone (stopped or died): its last status is frozen, never lead.
            return Leadership::Follower(None);
        }
        let s = self.status.borrow();
        if s.role == "leader" && s.leader_ready {
            Leadership::Leader
        } else if s.leader_id != self.id {
            Leadership::Follower(s.leader_address.clone())
        } else {
            Leadership::Follower(None)
        }
    }

    fn read_barrier(&self) -> BoxFuture<'static, Result<(), LogError>> {
        let tx = self.tx.clone();
        let mut applied = self.applied.clone();
        Box::pin(async move {
            let index = Self::read_index(tx).await?;
            let reached = applied.wait_for(|a| *a >= index);
            match tokio::time::timeout(READ_TIMEOUT, reached).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(LogError::Closed),
                Err(_) => Err(LogError::NotLeader { leader: None }),
            }
        })
    }

    fn heads(&self) -> BoxFuture<'static, Vec<HeadInfo>> {
        let me = self.status.borrow().clone();
        let peers = self.peers.clone();
        let token = self.token.clone();
        Box::pin(async move {
            let rows = me.voters.iter().map(|&id| {
                let me = me.clone();
                let address = peers.get(id).unwrap_or_default();
                let token = token.clone();
                async move {
                    if id == me.id {
                        return HeadInfo {
                            id,
                            address: me.address,
                            role: me.role,
                            term: me.term,
                            commit_index: me.commit,
                            pid: me.pid,
                        };
                    }
                    match peer_status(&address, &token).await {
                        Ok(s) => HeadInfo {
                            id,
                            address,
                            role: s.role,
                            term: s.term,
                            commit_index: s.commit_index,
                            pid: s.pid,
                        },
                        Err(e) => {
                            tracing::debug!(id, %address, error = %e, "head did not answer Status");
                            HeadInfo {
                                id,
                                address,
                                role: "unreachable".into(),
                                term: 0,
                                commit_index: 0,
                                pid: 0,
                            }
                        }
                    }
                }
            });
            futures::future::join_all(rows).await
        })
    }

    fn add_head(&self, address: String) -> BoxFuture<'static, Result<u64, LogError>> {
        let token = self.token.clone();
        let cluster_id = self.cluster_id.clone();
        let tx = self.tx.clone();
        Box::pin(async move {
            let (id, theirs) = identify(&address, &token)
                .await
                .map_err(LogError::Membership)?;
            if theirs != cluster_id {
                return Err(LogError::Membership(format!(
                    "{address} belongs to cluster {theirs:?}, not {cluster_id:?}"
                )));
            }
            let mut cc = ConfChange::default();
            cc.set_change_type(ConfChangeType::AddNode);
            cc.node_id = id;
            cc.context = address.clone().into_bytes().into();
            Self::conf_change(tx, cc).await?;
            tracing::info!(id, %address, "head added");
            Ok(id)
        })
    }

    fn remove_head(&self, id: u64) -> BoxFuture<'static, Result<(), LogError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let mut cc = ConfChange::default();
            cc.set_change_type(ConfChangeType::RemoveNode);
            cc.node_id = id;
            Self::conf_change(tx, cc).await?;
            tracing::info!(id, "head removed");
            Ok(())
        })
    }
}
