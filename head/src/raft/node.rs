//! The one task that owns the [`RawNode`]. It reads one message enum ([`Msg`]) plus a tick,
//! batches concurrent proposals into one entry (group commit), and handles each `Ready` in the
//! documented order: send messages, apply the snapshot, apply committed entries, persist entries
//! and hard state (one fsync), send persisted messages, advance, then the light ready. Snapshots
//! are built off the loop ([`SnapshotJob`], on the blocking pool; at most one at a time) and
//! their result is switched to, and the log compacted, at the top of a later turn.

use std::collections::HashMap;

use raft::eraftpb::{ConfChange, ConfChangeType};
use raft::{RawNode, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use super::apply::{Applier, PeerChanges, Pending, SnapshotJob};
use super::mailbox::{ConfReply, Msg, ReadReply, Reply, clone_err};
use super::storage::RaftStorage;
use super::transport::Transport;
use super::{NodeStatus, Peers, role_name};
use crate::log::LogError;
use crate::state::Command;

/// Most messages taken from the queue per loop turn (and so proposals per entry).
const MAX_DRAIN: usize = 512;

/// The owner task's state, generic over where the log is kept and how peers are reached.
pub(crate) struct Node<S: RaftStorage, T: Transport> {
    pub(crate) raw: RawNode<S>,
    pub(crate) storage: S,
    pub(crate) applier: Applier,
    pub(crate) transport: T,
    pub(crate) peers: Peers,
    pub(crate) status: watch::Sender<NodeStatus>,
    pub(crate) reads: HashMap<Vec<u8>, ReadReply>,
    pub(crate) read_seq: u64,
    pub(crate) pid: u32,
    /// The node's own mailbox, for snapshot builds to report back (weak: the node stops once
    /// every other sender is gone).
    pub(crate) mailbox: mpsc::WeakSender<Msg>,
    /// Where the snapshot build in flight leaves its result.
    pub(crate) built: Option<oneshot::Receiver<Result<raft::eraftpb::Snapshot, LogError>>>,
    /// Build snapshots as tokio tasks instead of on the blocking pool (the simulation: its
    /// paused clock must not run ahead while a build is in progress, or seeds would not replay).
    pub(crate) build_in_task: bool,
    /// The snapshot build in flight, awaited before the node stops (it holds the storage).
    pub(crate) build_task: Option<tokio::task::JoinHandle<()>>,
}

impl<S: RaftStorage, T: Transport> Node<S, T> {
    fn leader_address(&self) -> Option<String> {
        let leader = self.raw.raft.leader_id;
        if leader == 0 {
            return None;
        }
        self.peers.get(leader)
    }

    fn not_leader(&self) -> LogError {
        LogError::NotLeader {
            leader: self.leader_address(),
        }
    }

    /// Run until `stop` (`Ok`) or a fatal storage error (`Err`, after failing every waiting
    /// proposer with it). The task is supervised: an `Err` or a panic stops the head.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        mut stop: watch::Receiver<bool>,
        tick_every: std::time::Duration,
    ) -> Result<(), LogError> {
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.storage.conf_state().voters == [self.raw.raft.id] {
            // A one-head group need not wait for an election timeout.
            let _ = self.raw.campaign();
        }
        loop {
            let mut batch: Vec<(Vec<Command>, Reply)> = Vec::new();
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = tick.tick() => {
                    self.raw.tick();
                    if crate::fault::raft_fault(self.raw.raft.id) == Some(crate::fault::RaftFault::Panic) {
                        panic!("raft node task killed by the test hook (XNAI_TEST_RAFT_FAULT)");
                    }
                }
                m = rx.recv() => match m {
                    None => break,
                    Some(m) => {
                        self.handle(m, &mut batch);
                        for _ in 1..MAX_DRAIN {
                            match rx.try_recv() {
                                Ok(m) => self.handle(m, &mut batch),
                                Err(_) => break,
                            }
                        }
                    }
                },
            }
            self.propose_batch(batch);
            if let Err(e) = self.turn().await {
                tracing::error!(error = %e, "raft node stopped after a storage failure; restart the head");
                // Nothing waiting is acknowledged: every proposer and reader gets the cause.
                let cause = e.to_string();
                self.applier.fail_all(LogError::Failed(cause.clone()));
                for (_, r) in self.reads.drain() {
                    let _ = r.send(Err(LogError::Failed(cause.clone())));
                }
                self.wait_build().await;
                return Err(e);
            }
            self.publish();
        }
        self.applier.fail_all(LogError::Closed);
        for (_, r) in self.reads.drain() {
            let _ = r.send(Err(LogError::Closed));
        }
        self.wait_build().await;
        if let Err(e) = self.storage.flush().await {
            tracing::warn!(error = %e, "final flush of the raft storage failed");
        }
        Ok(())
    }

    fn handle(&mut self, m: Msg, batch: &mut Vec<(Vec<Command>, Reply)>) {
        match m {
            Msg::Propose { commands, reply } => batch.push((commands, reply)),
            Msg::FromPeer {
                from,
                address,
                messages,
            } => {
                if !address.is_empty() && self.peers.get(from).is_none() {
                    self.peers.insert(from, address);
                }
                for msg in messages {
                    if let Err(e) = self.raw.step(msg) {
                        tracing::debug!(from, error = %e, "raft refused a peer message");
                    }
                }
            }
            Msg::ReadIndex(reply) => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_leader()));
                    return;
                }
                self.read_seq += 1;
                let ctx = self.read_seq.to_be_bytes().to_vec();
                self.raw.read_index(ctx.clone());
                self.reads.insert(ctx, reply);
            }
            Msg::ConfChange { change, reply } => self.propose_conf_change(change, reply),
            Msg::Unreachable(id) => self.raw.report_unreachable(id),
            Msg::SnapshotBuilt => {}
            Msg::SnapshotSent(id, ok) => {
                let status = if ok {
                    raft::SnapshotStatus::Finish
                } else {
                    raft::SnapshotStatus::Failure
                };
                self.raw.report_snapshot(id, status);
            }
        }
    }

    /// One entry for every proposal taken this turn (group commit).
    fn propose_batch(&mut self, batch: Vec<(Vec<Command>, Reply)>) {
        if batch.is_empty() {
            return;
        }
        if self.raw.raft.state != StateRole::Leader {
            let err = self.not_leader();
            for (_, reply) in batch {
                let _ = reply.send(Err(clone_err(&err)));
            }
            return;
        }
        let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let data = match super::codec::encode_entry(&commands) {
            Ok(d) => d,
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(clone_err(&e)));
                }
                return;
            }
        };
        match self.raw.propose(vec![], data) {
            Ok(()) if self.applier.hooks.ack_before_commit() => {
                // The deliberate test-only bug: acknowledge what is only in this head's log.
                for reply in replies {
                    let _ = reply.send(Ok(Vec::new()));
                }
            }
            Ok(()) => {
                let index = self.raw.raft.raft_log.last_index();
                let term = self.raw.raft.term;
                self.applier
                    .pending
                    .insert(index, (term, Pending::Commands(replies)));
            }
            Err(e) => {
                tracing::debug!(error = %e, "proposal dropped");
                let err = self.not_leader();
                for reply in replies {
                    let _ = reply.send(Err(clone_err(&err)));
                }
            }
        }
    }

    fn propose_conf_change(&mut self, change: ConfChange, reply: ConfReply) {
        if self.raw.raft.state != StateRole::Leader {
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        let voters = self.storage.conf_state().voters;
        let present = voters.contains(&change.node_id);
        let noop = match change.get_change_type() {
            ConfChangeType::AddNode => present,
            ConfChangeType::RemoveNode => !present,
            ConfChangeType::AddLearnerNode => false,
        };
        if noop {
            let _ = reply.send(Ok(()));
            return;
        }
        if change.get_change_type() == ConfChangeType::RemoveNode && voters.len() <= 1 {
            let _ = reply.send(Err(LogError::Membership(
                "cannot remove the last head".into(),
            )));
            return;
        }
        if change.get_change_type() == ConfChangeType::RemoveNode
            && change.node_id == self.raw.raft.id
        {
            // A leader does not remove itself: hand the leadership to another head; the
            // caller's retry (UNAVAILABLE) reaches the new leader, which removes this one.
            let me = self.raw.raft.id;
            let best = voters
                .iter()
                .filter(|&&v| v != me)
                .max_by_key(|&&v| self.raw.raft.prs().get(v).map_or(0, |p| p.matched));
            if let Some(&to) = best {
                tracing::info!(to, "transferring leadership before removing this head");
                self.raw.transfer_leader(to);
            }
            let _ = reply.send(Err(LogError::NotLeader { leader: None }));
            return;
        }
        match self.raw.propose_conf_change(vec![], change) {
            Ok(()) => {
                let index = self.raw.raft.raft_log.last_index();
                let term = self.raw.raft.term;
                self.applier
                    .pending
                    .insert(index, (term, Pending::Conf(reply)));
            }
            Err(e) => {
                let _ = reply.send(Err(LogError::Membership(e.to_string())));
            }
        }
    }

    /// One loop turn's work after the mailbox: switch to a snapshot built meanwhile, handle the
    /// `Ready`, and start a snapshot build if one is due.
    async fn turn(&mut self) -> Result<(), LogError> {
        if let Some(rx) = &mut self.built {
            let result = match rx.try_recv() {
                Ok(result) => Some(result),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => {
                    Some(Err(LogError::Failed("the snapshot build died".into())))
                }
            };
            if let Some(result) = result {
                self.built = None;
                self.applier.finish_snapshot(result, &self.storage)?;
            }
        }
        self.on_ready().await?;
        if let Some(job) = self.applier.snapshot_job(&self.storage, &self.peers) {
            self.spawn_build(job);
        }
        Ok(())
    }

    /// Let a snapshot build in flight finish (its result is dropped): a restarted node must
    /// find the storage released.
    async fn wait_build(&mut self) {
        if let Some(h) = self.build_task.take() {
            let _ = h.await;
        }
    }

    /// Encode and write a snapshot off the loop; the result comes back through a oneshot the
    /// node checks every turn, and a mailbox message wakes it up.
    fn spawn_build(&mut self, job: SnapshotJob) {
        let storage = self.storage.clone();
        let mailbox = self.mailbox.clone();
        let in_task = self.build_in_task;
        let (tx, rx) = oneshot::channel();
        self.built = Some(rx);
        self.build_task = Some(tokio::spawn(async move {
            let result = if in_task {
                job.build(&storage)
            } else {
                tokio::task::spawn_blocking(move || job.build(&storage))
                    .await
                    .unwrap_or_else(|e| Err(LogError::Failed(format!("snapshot build died: {e}"))))
            };
            let _ = tx.send(result);
            if let Some(wake) = mailbox.upgrade() {
                // A full inbox only delays the result to the next tick.
                let _ = wake.try_send(Msg::SnapshotBuilt);
            }
        }));
    }

    /// Handle one `Ready` (if any) in raft-rs's documented order.
    async fn on_ready(&mut self) -> Result<(), LogError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if !rd.messages().is_empty() {
            self.transport.send(rd.take_messages());
        }
        let mut must_flush = false;
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.storage.apply_snapshot(&snap)?;
            self.applier.install_snapshot(&snap, &self.peers)?;
            self.storage
                .install_step(crate::fault::InstallStep::Applied)?;
            must_flush = true;
        }
        let committed = rd.take_committed_entries();
        let changes = (self.applier).apply(committed, &mut self.raw, &self.storage, &self.peers)?;
        self.on_peer_changes(changes);
        if !rd.entries().is_empty() || rd.hs().is_some() {
            crate::fault::before_persist(self.raw.raft.id)?;
        }
        if !rd.entries().is_empty() {
            self.storage.append(rd.entries())?;
            must_flush = true;
        }
        if let Some(hs) = rd.hs() {
            self.storage.set_hard_state(hs)?;
            must_flush = true;
        }
        if must_flush {
            self.storage.flush().await?;
        }
        if !rd.persisted_messages().is_empty() {
            self.transport.send(rd.take_persisted_messages());
        }
        for rs in rd.take_read_states() {
            if let Some(reply) = self.reads.remove(&rs.request_ctx) {
                let _ = reply.send(Ok(rs.index));
            }
        }
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.raw.raft.hard_state();
            hs.commit = commit;
            self.storage.set_hard_state(&hs)?;
        }
        self.transport.send(light.take_messages());
        let committed = light.take_committed_entries();
        let changes = (self.applier).apply(committed, &mut self.raw, &self.storage, &self.peers)?;
        self.on_peer_changes(changes);
        self.raw.advance_apply();
        if self.raw.raft.state != StateRole::Leader {
            if self.applier.has_pending() {
                self.applier.fail_all(self.not_leader());
            }
            if !self.reads.is_empty() {
                let err = self.not_leader();
                for (_, r) in self.reads.drain() {
                    let _ = r.send(Err(clone_err(&err)));
                }
            }
        }
        Ok(())
    }

    /// Tell the transport who joined and who left.
    fn on_peer_changes(&self, changes: PeerChanges) {
        for (id, address) in changes.added {
            tracing::info!(head = id, ?address, "head added to the group");
            if let Some(a) = address {
                self.transport.add_peer(id, &a);
            }
        }
        for id in changes.removed {
            tracing::info!(head = id, "head removed from the group");
            self.transport.remove_peer(id);
        }
    }

    /// Publish role, term, commit and leader for readers (services, status, the runtime).
    fn publish(&self) {
        let r = &self.raw.raft;
        let mut voters = self.storage.conf_state().voters;
        voters.sort_unstable();
        let next = NodeStatus {
            id: r.id,
            role: role_name(r.state).to_string(),
            term: r.term,
            commit: r.raft_log.committed,
            applied: self.applier.applied,
            leader_id: r.leader_id,
            leader_address: self.leader_address(),
            leader_ready: r.state == StateRole::Leader && self.applier.applied_term == r.term,
            // check_quorum makes a leader that lost its quorum step down within two election
            // timeouts; a follower counts only while the leader's messages keep arriving.
            reaches_leader: match r.state {
                StateRole::Leader => self.applier.applied_term == r.term,
                StateRole::Follower => {
                    r.leader_id != 0 && r.election_elapsed < r.election_timeout()
                }
                StateRole::Candidate | StateRole::PreCandidate => false,
            },
            voters,
            pid: self.pid,
            address: self.peers.get(r.id).unwrap_or_default(),
        };
        self.status.send_if_modified(|s| {
            if *s == next {
                false
            } else {
                *s = next;
                true
            }
        });
    }
}
