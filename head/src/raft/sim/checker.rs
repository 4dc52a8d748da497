//! The simulation's invariants, checked as events happen (every applied entry, every status
//! change) and once more at the end: all heads apply one sequence (same command at the same
//! index, no gaps, no repeats), at most one leader per term, and every acknowledged proposal is
//! applied, after every proposal acknowledged before it was submitted.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use crate::raft::NodeStatus;
use crate::raft::hooks::ApplyEvent;
use crate::state::Command;

/// One acknowledged proposal.
#[derive(Debug, Clone)]
pub(super) struct Ack {
    /// Its request id (unique per run).
    pub(super) rid: String,
    /// When the client sent it.
    pub(super) sent: Instant,
    /// When the client got the acknowledgement.
    pub(super) acked: Instant,
}

/// What every head applied and what clients were told, with the violations found so far.
#[derive(Debug, Default)]
pub(super) struct Checker {
    /// index -> (term, request ids): the one log every head must apply.
    log: BTreeMap<u64, (u64, Vec<String>)>,
    /// request id -> index where it was applied.
    position: HashMap<String, u64>,
    /// head -> last index its current incarnation applied (or restored).
    applied: BTreeMap<u64, u64>,
    /// term -> the head that led it.
    leaders: BTreeMap<u64, u64>,
    acks: Vec<Ack>,
    /// Acknowledgements seen (the final check consumes `acks`).
    acked: usize,
    /// Snapshots installed from a leader.
    snapshots: usize,
    /// What went wrong, in the order it was seen.
    pub(super) violations: Vec<String>,
}

/// The request id a simulated client put in a command.
pub(super) fn request_id(c: &Command) -> String {
    match c {
        Command::OpenSession { request_id, .. } => request_id.clone(),
        other => format!("{other:?}"),
    }
}

impl Checker {
    fn violation(&mut self, text: String) {
        tracing::warn!(%text, "invariant violated");
        self.violations.push(text);
    }

    /// Head `id` (re)started with its state restored up to `applied`.
    pub(super) fn started(&mut self, id: u64, applied: u64) {
        self.applied.insert(id, applied);
    }

    /// Head `id` applied an entry or installed a snapshot.
    pub(super) fn on_apply(&mut self, id: u64, ev: ApplyEvent<'_>) {
        let last = self.applied.get(&id).copied().unwrap_or(0);
        match ev {
            ApplyEvent::Snapshot { index } => {
                self.snapshots += 1;
                if index <= last {
                    self.violation(format!(
                        "head {id} installed a snapshot at {index}, not after its applied {last}"
                    ));
                }
                self.applied.insert(id, index.max(last));
            }
            ApplyEvent::Entry {
                index,
                term,
                batches,
            } => {
                if index != last + 1 {
                    self.violation(format!(
                        "head {id} applied index {index} right after {last} (gap or reorder)"
                    ));
                }
                self.applied.insert(id, index.max(last));
                let rids: Vec<String> = batches.iter().flatten().map(request_id).collect();
                match self.log.get(&index) {
                    Some(seen) if *seen != (term, rids.clone()) => {
                        let seen = seen.clone();
                        self.violation(format!(
                            "head {id} applied {rids:?} (term {term}) at index {index}, \
                             another head applied {:?} (term {})",
                            seen.1, seen.0
                        ));
                    }
                    Some(_) => {}
                    None => {
                        for rid in &rids {
                            if let Some(at) = self.position.insert(rid.clone(), index) {
                                self.violation(format!("{rid} applied twice: at {at} and {index}"));
                            }
                        }
                        self.log.insert(index, (term, rids));
                    }
                }
            }
        }
    }

    /// Head `id` published a new status.
    pub(super) fn on_status(&mut self, id: u64, s: &NodeStatus) {
        if s.role != "leader" {
            return;
        }
        if let Some(&other) = self.leaders.get(&s.term)
            && other != id
        {
            self.violation(format!(
                "two leaders in term {}: heads {other} and {id}",
                s.term
            ));
        }
        self.leaders.insert(s.term, id);
    }

    /// A client got an acknowledgement.
    pub(super) fn on_ack(&mut self, ack: Ack) {
        self.acked += 1;
        self.acks.push(ack);
    }

    /// Where `rid` was applied, if anywhere yet.
    pub(super) fn index_of(&self, rid: &str) -> Option<u64> {
        self.position.get(rid).copied()
    }

    /// The last index head `id` applied.
    pub(super) fn applied(&self, id: u64) -> u64 {
        self.applied.get(&id).copied().unwrap_or(0)
    }

    /// How many terms saw a leader, proposals were acknowledged, snapshots were installed.
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        (self.leaders.len(), self.acked, self.snapshots)
    }

    /// After the heal, once every head applied up to `end`: every acknowledged proposal is in
    /// the log before `end`, in real-time order.
    pub(super) fn final_check(&mut self, end: u64, heads: &[u64]) {
        for &h in heads {
            let a = self.applied(h);
            if a < end {
                self.violation(format!(
                    "head {h} applied only up to {a} of {end} after the heal"
                ));
            }
        }
        let mut placed: Vec<(Ack, u64)> = Vec::new();
        for ack in std::mem::take(&mut self.acks) {
            match self.index_of(&ack.rid) {
                Some(i) if i <= end => placed.push((ack, i)),
                Some(i) => {
                    let text = format!("acknowledged {} applied only at {i}, after {end}", ack.rid);
                    self.violation(text);
                }
                None => {
                    let text = format!("acknowledged {} was never applied (lost)", ack.rid);
                    self.violation(text);
                }
            }
        }
        // Real-time order: if A was acknowledged before B was sent, A comes first in the log.
        placed.sort_by_key(|(a, _)| a.sent);
        let mut by_ack = placed.clone();
        by_ack.sort_by_key(|(a, _)| a.acked);
        let mut max_index_acked = 0u64;
        let mut j = 0;
        for (b, bi) in &placed {
            while j < by_ack.len() && by_ack[j].0.acked < b.sent {
                max_index_acked = max_index_acked.max(by_ack[j].1);
                j += 1;
            }
            if *bi < max_index_acked {
                let text = format!(
                    "{} (index {bi}) was sent after an acknowledged proposal at index \
                     {max_index_acked}, yet comes before it",
                    b.rid
                );
                self.violation(text);
            }
        }
    }
}
