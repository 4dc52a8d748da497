//! Who names an object as an argument: an index from object id to the tasks and actors whose
//! specs pass it by reference, kept by `apply` as records come and go. Deciding whether an
//! object is still needed (for live work or lineage) then costs its users, not a scan of every
//! task in the state, which made each release cost more as history grew.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use xnai_proto::ids::{ActorId, ObjectId, TaskId};

use super::ControlState;
use super::types::{ActorState, Arg, ObjectState, TaskState};

/// Reverse argument index. Deterministic (ordered maps); an empty set is never kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgIndex {
    tasks: BTreeMap<ObjectId, BTreeSet<TaskId>>,
    actors: BTreeMap<ObjectId, BTreeSet<ActorId>>,
}

/// The object ids among `args`, each once.
pub(super) fn refs(args: &[Arg]) -> Vec<ObjectId> {
    let set: BTreeSet<ObjectId> = args
        .iter()
        .filter_map(|a| match a {
            Arg::Ref(id) => Some(*id),
            Arg::Inline(_) => None,
        })
        .collect();
    set.into_iter().collect()
}

fn add<K: Ord + Copy>(map: &mut BTreeMap<ObjectId, BTreeSet<K>>, user: K, args: &[Arg]) {
    for id in refs(args) {
        map.entry(id).or_default().insert(user);
    }
}

fn remove<K: Ord + Copy>(map: &mut BTreeMap<ObjectId, BTreeSet<K>>, user: K, args: &[Arg]) {
    for id in refs(args) {
        if let Some(users) = map.get_mut(&id) {
            users.remove(&user);
            if users.is_empty() {
                map.remove(&id);
            }
        }
    }
}

impl ArgIndex {
    /// Record that `task` passes these arguments.
    pub(super) fn add_task(&mut self, task: TaskId, args: &[Arg]) {
        add(&mut self.tasks, task, args);
    }

    /// Forget `task`'s arguments (its record left the state).
    pub(super) fn remove_task(&mut self, task: TaskId, args: &[Arg]) {
        remove(&mut self.tasks, task, args);
    }

    /// Record that `actor` was constructed with these arguments.
    pub(super) fn add_actor(&mut self, actor: ActorId, args: &[Arg]) {
        add(&mut self.actors, actor, args);
    }

    /// Forget `actor`'s arguments (its record left the state).
    pub(super) fn remove_actor(&mut self, actor: ActorId, args: &[Arg]) {
        remove(&mut self.actors, actor, args);
    }

    /// Tasks that pass `id`, in id order.
    pub fn tasks_using(&self, id: &ObjectId) -> impl Iterator<Item = &TaskId> {
        self.tasks.get(id).into_iter().flatten()
    }

    /// Actors constructed with `id`, in id order.
    pub fn actors_using(&self, id: &ObjectId) -> impl Iterator<Item = &ActorId> {
        self.actors.get(id).into_iter().flatten()
    }

    /// Number of (object, user) pairs.
    pub fn len(&self) -> usize {
        self.tasks.values().map(BTreeSet::len).sum::<usize>()
            + self.actors.values().map(BTreeSet::len).sum::<usize>()
    }

    /// Whether no object is used by anything.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.actors.is_empty()
    }
}

impl ControlState {
    /// Whether live work or lineage still needs `id`: it is an argument of a pending or running
    /// task, of the task that made an object someone still holds, or of a live actor.
    pub(super) fn needed(&self, id: ObjectId) -> bool {
        let by_task = self.arg_index.tasks_using(&id).any(|task_id| {
            self.tasks.get(task_id).is_some_and(|t| {
                matches!(t.state, TaskState::Pending | TaskState::Running)
                    || self
                        .objects
                        .get(&task_id.return_object())
                        .is_some_and(|o| !o.released && o.state == ObjectState::Ready)
            })
        });
        by_task
            || self.arg_index.actors_using(&id).any(|a| {
                self.actors
                    .get(a)
                    .is_some_and(|a| a.state != ActorState::Dead)
            })
    }

    /// Pending tasks with `object_id` among their arguments, in submission order.
    pub(super) fn pending_dependents(&self, object_id: ObjectId) -> Vec<TaskId> {
        let mut deps: Vec<(u64, TaskId)> = self
            .arg_index
            .tasks_using(&object_id)
            .filter_map(|id| {
                self.tasks
                    .get(id)
                    .filter(|t| t.state == TaskState::Pending)
                    .map(|t| (t.seq, *id))
            })
            .collect();
        deps.sort_unstable();
        deps.into_iter().map(|(_, id)| id).collect()
    }
}
