//! [`RaftLog`]: the handle services and the runtime use ([`CommandLog`]). It talks to the node
//! task only through its mailbox and reads what the node publishes (status, applied index,
//! state); [`super::start`] opens and starts it.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use raft::eraftpb::{ConfChange, ConfChangeType};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use xnai_proto::auth::TokenInject;

use super::mailbox::Msg;
use super::peer::{PeerApi, identify, peer_status};
use super::{EffectSink, NodeStatus, Peers};
use crate::log::{CommandLog, EffectsSender, HeadInfo, Leadership, LogError, SharedState};
use crate::state::{Command, Outcome};

/// Messages that may wait for the node task before callers feel backpressure.
pub(super) const QUEUE: usize = 16_384;
/// How long a ReadIndex may take (an election in between makes it fail).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a membership change may take to commit.
const CONF_TIMEOUT: Duration = Duration::from_secs(10);

/// The Raft-replicated [`CommandLog`]. Share it behind an `Arc`.
pub struct RaftLog {
    pub(super) id: u64,
    pub(super) cluster_id: String,
    /// The node task's mailbox.
    pub(super) tx: mpsc::Sender<Msg>,
    pub(super) state: SharedState,
    pub(super) applied: watch::Receiver<u64>,
    pub(super) status: watch::Receiver<NodeStatus>,
    pub(super) effects: EffectSink,
    pub(super) peers: Peers,
    /// Authenticates Identify/Status calls to other heads.
    pub(super) token: TokenInject,
    pub(super) stop: watch::Sender<bool>,
    /// The node task, until closed or crashed.
    pub(super) owner: Mutex<Option<JoinHandle<()>>>,
}

/// A started log and the peer service that feeds it.
pub struct RaftStart {
    /// The log.
    pub log: RaftLog,
    /// The `xnai.v1.Peer` handlers to serve.
    pub peer: PeerApi,
}

impl RaftLog {
    /// This head's Raft view; changes after every node loop turn that changed it.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// Stop the node task at once, as a crash would: no final flush, pending proposals see
    /// `Closed`. The storage keeps what was written (test builds only).
    #[cfg(test)]
    pub(crate) fn crash(&self) {
        self.stop.send_replace(true);
        if let Some(h) = self.owner.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    /// Where applied batches go: the runtime's channel while this head leads.
    pub fn set_effects(&self, sink: Option<EffectsSender>) {
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
