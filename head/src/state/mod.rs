//! The head's control state: workers, tasks, actors, the object directory and actor names,
//! changed only by [`ControlState::apply`]. Pure and deterministic (ordered maps, no clock, no
//! randomness), so a replicated log can drive identical copies of it on every head.

mod actors;
mod apply;
mod command;
mod deps;
mod lineage;
mod objects;
mod retention;
mod sessions;
mod stats;
mod types;
mod workers;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use xnai_proto::ids::{ActorId, ObjectId, SessionId, TaskId, WorkerId};

pub use command::{ApplyError, Command, Effect, Outcome};
pub use deps::ArgIndex;
pub use retention::{Limits, SUMMARY_ERROR_BYTES, TaskSummary};
pub use stats::StateSize;
pub use types::{
    ActorOptions, ActorRecord, ActorSpec, ActorState, Arg, Attempt, BreakerState, CopyKind,
    FailureKind, MAX_ARGUMENT_MISSES, ObjectRecord, ObjectState, Resources, SessionRecord,
    TaskOptions, TaskRecord, TaskSpec, TaskState, WorkerRecord, WorkerState,
};

/// How many request ids `apply` remembers for dedup; the oldest are forgotten first.
pub const REMEMBERED_REQUESTS: usize = 100_000;

/// Everything the head knows, as changed by applied commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    /// Registered workers.
    pub workers: BTreeMap<WorkerId, WorkerRecord>,
    /// Tasks whose record may still be needed: unfinished ones, and finished or failed ones
    /// whose output object is still in the directory (their lineage). See [`retention`].
    pub tasks: BTreeMap<TaskId, TaskRecord>,
    /// Live actors, and the most recently dead ones ([`Limits::dead_actors`]).
    pub actors: BTreeMap<ActorId, ActorRecord>,
    /// The object directory: every object not yet freed (freed ones leave a tombstone).
    pub objects: BTreeMap<ObjectId, ObjectRecord>,
    /// Names of live (not dead) actors.
    pub names: BTreeMap<String, ActorId>,
    /// Pending tasks in submission order (`seq` -> task).
    pub pending_tasks: BTreeMap<u64, TaskId>,
    /// Pending or restarting actors in creation order (`seq` -> actor).
    pub pending_actors: BTreeMap<u64, ActorId>,
    /// Tasks that are pending or running.
    pub unfinished_tasks: u64,
    /// Open client sessions.
    pub sessions: BTreeMap<SessionId, SessionRecord>,
    /// Which tasks and actors name each object as an argument.
    pub arg_index: ArgIndex,
    /// Summaries of the most recently forgotten tasks, oldest first ([`Limits::finished_tasks`]).
    pub history: VecDeque<TaskSummary>,
    /// Ids of the most recently freed objects, oldest first ([`Limits::freed_objects`]), so a
    /// late reader is told "freed" rather than "unknown".
    pub freed: VecDeque<ObjectId>,
    /// The same ids as `freed`, for lookup.
    pub freed_index: BTreeSet<ObjectId>,
    /// Dead workers still recorded, in the order they died ([`Limits::dead_workers`]).
    pub dead_workers: VecDeque<WorkerId>,
    /// Dead actors still recorded, in the order they died ([`Limits::dead_actors`]).
    pub dead_actors: VecDeque<ActorId>,
    /// Bytes of inline arguments held by the task and actor records (the budget's use).
    pub inline_bytes: u64,
    /// What the state keeps and how much; the same on every replica (logged with snapshots).
    pub limits: Limits,
    /// Effects gathered while one command is applied (empty between commands).
    #[serde(skip)]
    fx: Vec<Effect>,
    next_seq: u64,
    applied_requests: BTreeMap<String, Outcome>,
    request_order: VecDeque<String>,
}

impl ControlState {
    /// An empty state with these retention limits (tests use small ones).
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Every function some registered worker offers, sorted.
    pub fn offered_functions(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.alive_workers().flat_map(|w| &w.functions).collect();
        set.into_iter().cloned().collect()
    }

    /// Every actor class some registered worker offers, sorted.
    pub fn offered_classes(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.alive_workers().flat_map(|w| &w.classes).collect();
        set.into_iter().cloned().collect()
    }

    /// Registered workers not declared dead.
    pub fn alive_workers(&self) -> impl Iterator<Item = &WorkerRecord> {
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
    }

    /// Whether `worker` may get new placements as far as the logged state says: alive and its
    /// breaker closed.
    pub fn placeable(&self, worker: &WorkerId) -> bool {
        self.workers
            .get(worker)
            .is_some_and(|w| w.state == WorkerState::Alive && w.breaker == BreakerState::Closed)
    }

    /// Ids of registered workers not declared dead.
    pub fn alive_workers_ids(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.workers
            .iter()
            .filter(|(_, w)| w.state == WorkerState::Alive)
            .map(|(id, _)| *id)
    }

    /// Whether `worker` is registered and not declared dead.
    pub fn worker_alive(&self, worker: &WorkerId) -> bool {
        self.workers
            .get(worker)
            .is_some_and(|w| w.state == WorkerState::Alive)
    }

    /// The actor with this name, if one is live.
    pub fn actor_by_name(&self, name: &str) -> Option<ActorId> {
        self.names.get(name).copied()
    }

    /// Whether every object argument of `spec` is ready.
    pub fn args_ready(&self, spec: &TaskSpec) -> bool {
        spec.args.iter().all(|a| match a {
            Arg::Inline(_) => true,
            Arg::Ref(id) => self
                .objects
                .get(id)
                .is_some_and(|o| o.state == ObjectState::Ready),
        })
    }

    /// The outcome remembered for `request_id`, if it was applied before.
    pub fn remembered(&self, request_id: &str) -> Option<&Outcome> {
        self.applied_requests.get(request_id)
    }

    fn remember(&mut self, request_id: String, outcome: &Outcome) {
        if self
            .applied_requests
            .insert(request_id.clone(), outcome.clone())
            .is_none()
        {
            self.request_order.push_back(request_id);
        }
        while self.request_order.len() > REMEMBERED_REQUESTS {
            if let Some(old) = self.request_order.pop_front() {
                self.applied_requests.remove(&old);
            }
        }
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}
