//! What the control state keeps, and for how long, so it stays bounded however long the
//! cluster runs. A task's record (its spec and inline arguments: its lineage) stays while its
//! output object is in the directory, since that object, or a live object built from it, may
//! need rebuilding; once the output is freed the record leaves and a small summary joins a
//! bounded ring of finished history. Freed objects leave the directory and a bounded ring of
//! tombstones; dead workers and dead actors are kept in bounded numbers, oldest dropped first.
//! Inline arguments of the records kept count against a per-cluster byte budget.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};

use super::ControlState;
use super::command::ApplyError;
use super::types::*;

/// Longest error text a [`TaskSummary`] keeps, in bytes.
pub const SUMMARY_ERROR_BYTES: usize = 256;

/// Retention limits. They are part of the replicated state (snapshots carry them), so every
/// replica forgets the same records at the same command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Finished or failed tasks kept as summaries after their record left (default 10,000).
    pub finished_tasks: usize,
    /// Freed object ids remembered, so a late reader hears "freed" (default 10,000).
    pub freed_objects: usize,
    /// Dead workers kept (a process that comes back is told to drop what it held; default 256).
    pub dead_workers: usize,
    /// Dead actors kept, so their callers can read why (default 1,000).
    pub dead_actors: usize,
    /// Inline argument bytes all kept task and actor records may hold (default 128 MiB: every
    /// snapshot carries them, and a snapshot is copied, encoded and sent whole).
    pub inline_arg_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            finished_tasks: 10_000,
            freed_objects: 10_000,
            dead_workers: 256,
            dead_actors: 1_000,
            inline_arg_bytes: 128 << 20,
        }
    }
}

/// What is left of a task once its record is forgotten: enough to list it, no arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task.
    pub task_id: TaskId,
    /// The function it ran.
    pub function: String,
    /// Finished or failed.
    pub state: TaskState,
    /// Runs it took (charged and uncharged).
    pub attempts: u32,
    /// Why it failed, cut to [`SUMMARY_ERROR_BYTES`].
    pub error: Option<String>,
}

/// Bytes of inline arguments in `args`.
pub(super) fn inline_len(args: &[Arg]) -> u64 {
    args.iter()
        .map(|a| match a {
            Arg::Inline(b) => b.len() as u64,
            Arg::Ref(_) => 0,
        })
        .sum()
}

fn cut(mut s: String) -> String {
    if s.len() > SUMMARY_ERROR_BYTES {
        let mut end = SUMMARY_ERROR_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl ControlState {
    /// Refuse `args` if holding them would take the kept records over the inline budget.
    pub(super) fn check_inline_budget(&self, args: &[Arg]) -> Result<(), ApplyError> {
        let need = inline_len(args);
        let budget = self.limits.inline_arg_bytes;
        if need > 0 && self.inline_bytes.saturating_add(need) > budget {
            return Err(ApplyError::InlineBudget {
                need,
                used: self.inline_bytes,
                budget,
            });
        }
        Ok(())
    }

    /// Drop the record of a finished or failed task whose output left the directory, and
    /// keep its summary. Unfinished tasks and tasks whose output is still there are kept.
    pub(super) fn forget_task(&mut self, task_id: TaskId) {
        let done = self
            .tasks
            .get(&task_id)
            .is_some_and(|t| matches!(t.state, TaskState::Finished | TaskState::Failed));
        if !done || self.objects.contains_key(&task_id.return_object()) {
            return;
        }
        let Some(t) = self.tasks.remove(&task_id) else {
            return;
        };
        self.arg_index.remove_task(task_id, &t.spec.args);
        self.inline_bytes = self.inline_bytes.saturating_sub(inline_len(&t.spec.args));
        self.history.push_back(TaskSummary {
            task_id,
            function: t.spec.function,
            state: t.state,
            attempts: t.attempts.len() as u32,
            error: t.error.map(cut),
        });
        while self.history.len() > self.limits.finished_tasks {
            self.history.pop_front();
        }
    }

    /// Take a freed object out of the directory, leaving a tombstone, then its producing
    /// task's record if that is done.
    pub(super) fn forget_object(&mut self, id: ObjectId) {
        if self.objects.remove(&id).is_none() {
            return;
        }
        if self.freed_index.insert(id) {
            self.freed.push_back(id);
        }
        while self.freed.len() > self.limits.freed_objects {
            if let Some(old) = self.freed.pop_front() {
                self.freed_index.remove(&old);
            }
        }
        if let Some(task_id) = id.producing_task() {
            self.forget_task(task_id);
        }
    }

    /// A worker was declared dead: queue it, and drop the oldest dead ones beyond the limit.
    pub(super) fn retire_worker(&mut self, worker_id: WorkerId) {
        self.dead_workers.push_back(worker_id);
        while self.dead_workers.len() > self.limits.dead_workers {
            let Some(old) = self.dead_workers.pop_front() else {
                break;
            };
            if self
                .workers
                .get(&old)
                .is_some_and(|w| w.state == WorkerState::Dead)
            {
                self.workers.remove(&old);
            }
        }
    }

    /// An actor died for good: queue it, and drop the oldest dead ones beyond the limit.
    pub(super) fn retire_actor(&mut self, actor_id: ActorId) {
        self.dead_actors.push_back(actor_id);
        while self.dead_actors.len() > self.limits.dead_actors {
            let Some(old) = self.dead_actors.pop_front() else {
                break;
            };
            let dead = self
                .actors
                .get(&old)
                .is_some_and(|a| a.state == ActorState::Dead);
            if dead && let Some(a) = self.actors.remove(&old) {
                self.arg_index.remove_actor(old, &a.spec.args);
                self.inline_bytes = self.inline_bytes.saturating_sub(inline_len(&a.spec.args));
            }
        }
    }

    /// The directory entry of `id`; for a recently freed object, a FREED entry rebuilt from
    /// its tombstone.
    pub fn object_view(&self, id: &ObjectId) -> Option<Cow<'_, ObjectRecord>> {
        if let Some(o) = self.objects.get(id) {
            return Some(Cow::Borrowed(o));
        }
        self.freed_index.contains(id).then(|| {
            Cow::Owned(ObjectRecord {
                state: ObjectState::Freed,
                size: 0,
                crc32: 0,
                locations: Default::default(),
                producing_task: id.producing_task(),
                error: Some(FREED.into()),
                owner: None,
                released: true,
            })
        })
    }

    /// The state of `id` as a reader sees it (see [`ControlState::object_view`]).
    pub fn object_state(&self, id: &ObjectId) -> Option<ObjectState> {
        self.object_view(id).map(|o| o.state)
    }
}

/// The error a freed object carries.
pub(super) const FREED: &str = "freed: its holder released it";
