//! Applying committed entries to the state machine on every head: normal entries (a batch of
//! proposals, one group commit) go through [`ControlState::apply`]; membership entries change
//! the conf state and the address book. Outcomes are routed back to waiting proposers by the
//! entry's (term, index). The applier says when a snapshot is due (every `snapshot_every`
//! applied entries, or sooner once the log since the last one outweighs it) and hands the node a
//! [`SnapshotJob`] (a copy of the state) to build off the loop; the built snapshot comes back to
//! [`Applier::finish_snapshot`], which compacts the log. The applier does no I/O besides storage: it
//! returns the membership changes ([`PeerChanges`]) and the node tells its transport, so
//! membership is unit-tested without a network.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::Message as _;
use raft::RawNode;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, EntryType, Snapshot};
use tokio::sync::watch;

use super::codec::{decode_entry, decode_snapshot, encode_snapshot};
use super::hooks::Hooks;
use super::mailbox::{ConfReply, Reply, clone_err};
use super::storage::RaftStorage;
use super::{EffectSink, Peers};
use crate::log::{AppliedBatch, LogError, SharedState};
use crate::state::{ControlState, Outcome};

/// Who waits for an entry.
pub(crate) enum Pending {
    /// Proposals of one group commit, in entry order.
    Commands(Vec<Reply>),
    /// A membership change.
    Conf(ConfReply),
}

/// Heads that joined or left the group in the entries just applied.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerChanges {
    /// Heads added, with their addresses when known.
    pub(crate) added: Vec<(u64, Option<String>)>,
    /// Heads removed.
    pub(crate) removed: Vec<u64>,
}

impl PeerChanges {
    fn extend(&mut self, other: PeerChanges) {
        self.added.extend(other.added);
        self.removed.extend(other.removed);
    }
}

impl Pending {
    fn fail(self, err: &LogError) {
        match self {
            Pending::Commands(replies) => {
                for r in replies {
                    let _ = r.send(Err(clone_err(err)));
                }
            }
            Pending::Conf(r) => {
                let _ = r.send(Err(clone_err(err)));
            }
        }
    }
}

/// The state machine side of the node.
pub(crate) struct Applier {
    pub(crate) state: SharedState,
    pub(crate) applied: u64,
    pub(crate) applied_term: u64,
    pub(crate) applied_tx: watch::Sender<u64>,
    pub(crate) effects: EffectSink,
    pub(crate) pending: BTreeMap<u64, (u64, Pending)>,
    pub(crate) snapshot_every: u64,
    pub(crate) snapshot_index: u64,
    /// Set by a membership change: a head added later must get a snapshot whose conf state
    /// lists it (raft refuses to restore one that does not), so snapshot right away.
    pub(crate) force_snapshot: bool,
    /// Bytes of normal entries applied since the last snapshot.
    pub(crate) log_bytes: u64,
    /// Size of the last snapshot's data (0 before the first).
    pub(crate) snapshot_bytes: u64,
    /// A snapshot is being built off the loop (at most one at a time).
    pub(crate) building: bool,
    /// Test-only observation and fault points (empty in production).
    pub(crate) hooks: Hooks,
}

/// Log bytes since the last snapshot that always allow a new one.
pub(crate) const SNAPSHOT_MIN_LOG_BYTES: u64 = 8 << 20;
/// A snapshot is also due once the log since the last one holds this many times its size: the
/// log on disk then stays within a small multiple of the state, and each snapshot's cost (one
/// encoding of the state) is paid for by at least as many bytes of log.
pub(crate) const SNAPSHOT_LOG_RATIO: u64 = 2;

impl Applier {
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Fail every waiting proposer (leadership lost, or shutting down).
    pub(crate) fn fail_all(&mut self, err: LogError) {
        for (_, (_, p)) in std::mem::take(&mut self.pending) {
            p.fail(&err);
        }
    }

    /// The proposer waiting for (term, index), failing any that lost their slot.
    fn take_pending(&mut self, index: u64, term: u64) -> Option<Pending> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > index {
                return None;
            }
            let (k, (t, p)) = entry.remove_entry();
            if k == index && t == term {
                return Some(p);
            }
            p.fail(&LogError::NotLeader { leader: None });
        }
        None
    }

    /// Show an entry about to be applied to the test observer (its commands, if any).
    #[cfg(test)]
    fn observe(&self, e: &raft::eraftpb::Entry) {
        let Some(f) = &self.hooks.on_apply else {
            return;
        };
        let batches = if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
            decode_entry(e.index, &e.data).unwrap_or_default()
        } else {
            Vec::new()
        };
        f(super::hooks::ApplyEvent::Entry {
            index: e.index,
            term: e.term,
            batches: &batches,
        });
    }

    /// Replace the state with a snapshot received from the leader.
    pub(crate) fn install_snapshot(
        &mut self,
        snap: &Snapshot,
        peers: &Peers,
    ) -> Result<(), LogError> {
        let meta = snap.get_metadata();
        let data = decode_snapshot(meta.index, snap.get_data())?;
        self.state.write(|s| *s = data.state);
        for (id, address) in data.peers {
            peers.insert(id, address);
        }
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.snapshot_index = meta.index;
        self.snapshot_bytes = snap.get_data().len() as u64;
        self.log_bytes = 0;
        self.applied_tx.send_replace(meta.index);
        #[cfg(test)]
        if let Some(f) = &self.hooks.on_apply {
            f(super::hooks::ApplyEvent::Snapshot { index: meta.index });
        }
        tracing::info!(
            index = data.index,
            term = meta.term,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    /// Apply committed entries in order, then publish the applied index, hand effects to the
    /// runtime (on the leader) and answer proposers. Returns the membership changes applied.
    pub(crate) fn apply<S: RaftStorage>(
        &mut self,
        entries: Vec<raft::eraftpb::Entry>,
        raw: &mut RawNode<S>,
        storage: &S,
        peers: &Peers,
    ) -> Result<PeerChanges, LogError> {
        let mut changes = PeerChanges::default();
        if entries.is_empty() {
            return Ok(changes);
        }
        let mut effects = Vec::new();
        let mut replies: Vec<(Reply, Vec<Outcome>)> = Vec::new();
        let mut conf_replies = Vec::new();
        for e in entries {
            let (index, term) = (e.index, e.term);
            if index <= self.applied {
                continue;
            }
            #[cfg(test)]
            self.observe(&e);
            let pending = self.take_pending(index, term);
            self.log_bytes += e.data.len() as u64;
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {
                    if let Some(p) = pending {
                        p.fail(&LogError::Membership(
                            "another membership change is in progress; retry".into(),
                        ));
                    }
                }
                EntryType::EntryNormal => match decode_entry(index, &e.data) {
                    Ok(batches) => {
                        let outcomes: Vec<Vec<Outcome>> = self.state.write(|s| {
                            batches
                                .into_iter()
                                .map(|cmds| {
                                    cmds.into_iter()
                                        .map(|c| {
                                            let (o, fx) = s.apply(c);
                                            effects.extend(fx);
                                            o
                                        })
                                        .collect()
                                })
                                .collect()
                        });
                        if let Some(Pending::Commands(rs)) = pending {
                            replies.extend(rs.into_iter().zip(outcomes));
                        }
                    }
                    Err(err) => {
                        // Skipping would let this head diverge from any head that reads the
                        // entry: stop here (the node task ends, and the head with it).
                        tracing::error!(index, error = %err, "cannot decode a committed entry; stopping this head");
                        if let Some(p) = pending {
                            p.fail(&err);
                        }
                        return Err(err);
                    }
                },
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let result = self.apply_conf(&e, raw, storage, peers);
                    let result = match result {
                        Ok(c) => {
                            changes.extend(c);
                            Ok(())
                        }
                        Err(err) => {
                            tracing::warn!(index, error = %err, "membership change not applied");
                            Err(err)
                        }
                    };
                    if let Some(Pending::Conf(r)) = pending {
                        conf_replies.push((r, result));
                    }
                }
            }
            self.applied = index;
            self.applied_term = term;
        }
        self.applied_tx.send_replace(self.applied);
        let sink = self
            .effects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(tx) = sink {
            let _ = tx.send(AppliedBatch {
                index: self.applied,
                effects,
            });
        }
        for (r, outcomes) in replies {
            let _ = r.send(Ok(outcomes));
        }
        for (r, result) in conf_replies {
            let _ = r.send(result);
        }
        Ok(changes)
    }

    fn apply_conf<S: RaftStorage>(
        &mut self,
        e: &raft::eraftpb::Entry,
        raw: &mut RawNode<S>,
        storage: &S,
        peers: &Peers,
    ) -> Result<PeerChanges, LogError> {
        let bad = |reason: String| LogError::Membership(reason);
        let before: BTreeSet<u64> = storage.conf_state().voters.into_iter().collect();
        let cs = if e.get_entry_type() == EntryType::EntryConfChange {
            let cc = ConfChange::parse_from_bytes(e.get_data()).map_err(|x| bad(x.to_string()))?;
            if cc.get_change_type() == ConfChangeType::AddNode
                && let Ok(address) = String::from_utf8(cc.context.to_vec())
                && !address.is_empty()
            {
                peers.insert(cc.node_id, address);
            }
            raw.apply_conf_change(&cc).map_err(|x| bad(x.to_string()))?
        } else {
            let cc =
                ConfChangeV2::parse_from_bytes(e.get_data()).map_err(|x| bad(x.to_string()))?;
            raw.apply_conf_change(&cc).map_err(|x| bad(x.to_string()))?
        };
        storage.set_conf_state(&cs)?;
        self.force_snapshot = true;
        let after: BTreeSet<u64> = cs.voters.iter().copied().collect();
        storage.set_peers(&peers.all())?;
        Ok(PeerChanges {
            added: after
                .difference(&before)
                .map(|&id| (id, peers.get(id)))
                .collect(),
            removed: before.difference(&after).copied().collect(),
        })
    }

    /// A snapshot job once one is due and none is being built: `snapshot_every` entries were
    /// applied since the last one, or the entries since then hold more bytes than
    /// [`SNAPSHOT_LOG_RATIO`] times the last snapshot (and at least [`SNAPSHOT_MIN_LOG_BYTES`]:
    /// large entries, inline arguments, would otherwise pile up on disk far beyond the state
    /// they describe), or a membership change asked for one. The job holds a copy of the state
    /// (cloned under the read lock), so the node's loop goes on while it is encoded and written.
    pub(crate) fn snapshot_job<S: RaftStorage>(
        &mut self,
        storage: &S,
        peers: &Peers,
    ) -> Option<SnapshotJob> {
        let by_bytes = self.log_bytes
            >= SNAPSHOT_MIN_LOG_BYTES.max(SNAPSHOT_LOG_RATIO.saturating_mul(self.snapshot_bytes));
        let due = self.snapshot_every > 0
            && (self.applied >= self.snapshot_index + self.snapshot_every || by_bytes);
        if self.building || !(due || self.force_snapshot) || self.applied <= self.snapshot_index {
            return None;
        }
        self.building = true;
        self.force_snapshot = false;
        self.log_bytes = 0;
        Some(SnapshotJob {
            index: self.applied,
            term: self.applied_term,
            conf_state: storage.conf_state(),
            peers: peers.all(),
            state: self.state.read(|s| s.clone()),
        })
    }

    /// A snapshot built off the loop is ready: keep it and compact the log, unless a newer
    /// snapshot (from the leader) arrived meanwhile.
    pub(crate) fn finish_snapshot<S: RaftStorage>(
        &mut self,
        built: Result<Snapshot, LogError>,
        storage: &S,
    ) -> Result<(), LogError> {
        self.building = false;
        let snap = built?;
        let index = snap.get_metadata().index;
        if index <= storage.stored_snapshot().get_metadata().index {
            tracing::debug!(index, "a newer snapshot arrived while this one was built");
            return Ok(());
        }
        storage.compact_to(&snap)?;
        self.snapshot_index = index;
        self.snapshot_bytes = snap.get_data().len() as u64;
        tracing::debug!(index, "snapshot written, raft log compacted");
        Ok(())
    }
}

/// What a snapshot needs, copied from the node at one applied index.
pub(crate) struct SnapshotJob {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) conf_state: raft::eraftpb::ConfState,
    pub(crate) peers: BTreeMap<u64, String>,
    pub(crate) state: ControlState,
}

impl SnapshotJob {
    /// Encode the snapshot and write its data where the storage keeps it (blocking: run it off
    /// the node's loop).
    pub(crate) fn build<S: RaftStorage>(self, storage: &S) -> Result<Snapshot, LogError> {
        let data = encode_snapshot(self.index, &self.state, &self.peers)?;
        let mut snap = Snapshot::default();
        snap.set_data(data.into());
        let meta = snap.mut_metadata();
        meta.index = self.index;
        meta.term = self.term;
        meta.set_conf_state(self.conf_state);
        storage.stage_snapshot(&snap)?;
        Ok(snap)
    }
}
