//! The control state's size, for `xnai status`: entries by kind and the bytes the state takes
//! when encoded as a snapshot (bincode, standard config, counted without allocating), so an
//! operator and the CI soak test can see that it stays bounded.

use super::ControlState;
use super::types::{ActorState, WorkerState};

/// Entries by kind and approximate bytes of a [`ControlState`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSize {
    /// Worker records (alive and dead).
    pub workers: u64,
    /// Of which dead (kept up to `Limits::dead_workers`).
    pub dead_workers: u64,
    /// Task records (unfinished, or kept as lineage of a live object).
    pub tasks: u64,
    /// Object directory entries (freed objects leave it).
    pub objects: u64,
    /// Actor records (live and dead).
    pub actors: u64,
    /// Of which dead (kept up to `Limits::dead_actors`).
    pub dead_actors: u64,
    /// Open sessions.
    pub sessions: u64,
    /// Finished-task summaries kept for listing (up to `Limits::finished_tasks`).
    pub history: u64,
    /// Freed-object tombstones (up to `Limits::freed_objects`).
    pub tombstones: u64,
    /// Request ids remembered for dedup (up to `REMEMBERED_REQUESTS`).
    pub requests: u64,
    /// Inline argument bytes held by the kept task and actor records.
    pub inline_arg_bytes: u64,
    /// The cluster's inline argument budget.
    pub inline_arg_budget: u64,
    /// Bytes of the state as a snapshot encodes it.
    pub approx_bytes: u64,
}

impl StateSize {
    /// Records of live things and lineage: workers, tasks, objects, actors, sessions (the
    /// bounded rings of history, tombstones and request ids are not counted).
    pub fn entries(&self) -> u64 {
        self.workers + self.tasks + self.objects + self.actors + self.sessions
    }
}

impl ControlState {
    /// Count entries and encoded bytes. Walks the whole state: for status calls, not for
    /// every command.
    pub fn size(&self) -> StateSize {
        let mut bytes = bincode::enc::write::SizeWriter::default();
        // Encoding to a counter fails only for types bincode cannot encode; none are here.
        let approx_bytes =
            match bincode::serde::encode_into_writer(self, &mut bytes, bincode::config::standard())
            {
                Ok(()) => bytes.bytes_written as u64,
                Err(_) => 0,
            };
        StateSize {
            workers: self.workers.len() as u64,
            dead_workers: self
                .workers
                .values()
                .filter(|w| w.state == WorkerState::Dead)
                .count() as u64,
            tasks: self.tasks.len() as u64,
            objects: self.objects.len() as u64,
            actors: self.actors.len() as u64,
            dead_actors: self
                .actors
                .values()
                .filter(|a| a.state == ActorState::Dead)
                .count() as u64,
            sessions: self.sessions.len() as u64,
            history: self.history.len() as u64,
            tombstones: self.freed.len() as u64,
            requests: self.applied_requests.len() as u64,
            inline_arg_bytes: self.inline_bytes,
            inline_arg_budget: self.limits.inline_arg_bytes,
            approx_bytes,
        }
    }
}
