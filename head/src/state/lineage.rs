//! Lineage reconstruction in `ControlState::apply`: when the last copy of a task's output goes
//! away, the task that made it runs again (within its retry budget), and so, in the same way,
//! does every lost input it needs. A put object has no lineage: it becomes LOST with a reason.
//! Lineage is the task records themselves, kept while a live object may need them (`retention`).

use xnai_proto::ids::{ObjectId, TaskId, WorkerId};

use super::ControlState;
use super::apply::dependency_error;
use super::types::*;

impl ControlState {
    /// The last copy of `id` went away (on `worker_id`, for `reason`): rebuild it, free it if
    /// nobody needs it any more, or mark it LOST and fail the pending tasks that wait for it.
    pub(super) fn object_lost(&mut self, id: ObjectId, worker_id: WorkerId, reason: &str) {
        let Some(o) = self.objects.get(&id) else {
            return;
        };
        if o.released && !self.needed(id) {
            self.free_object(id);
            return;
        }
        let error = match o.producing_task {
            None => format!(
                "object {id} was put on worker {worker_id}, which lost it ({reason}); put \
                 objects cannot be rebuilt"
            ),
            Some(task_id) => match self.rebuild(task_id, reason) {
                Ok(()) => return,
                Err(why) => format!(
                    "every copy of object {id} is gone (last one on worker {worker_id}: \
                     {reason}) and it cannot be rebuilt: {why}"
                ),
            },
        };
        let Some(o) = self.objects.get_mut(&id) else {
            return;
        };
        o.state = ObjectState::Lost;
        o.error = Some(error);
        let lost = o.clone();
        for dep in self.pending_dependents(id) {
            self.fail_task(dep, dependency_error(id, &lost));
        }
    }

    /// Run a finished task again because its output is lost; its object goes back to PENDING,
    /// so `get` waits through the rebuild.
    fn rebuild(&mut self, task_id: TaskId, reason: &str) -> Result<(), String> {
        let task = self
            .tasks
            .get_mut(&task_id)
            .ok_or_else(|| format!("its task {task_id} is unknown"))?;
        if task.state != TaskState::Finished {
            return Err(format!("its task {task_id} is {:?}", task.state));
        }
        let runs = task.charged_attempts();
        let allowed = task.spec.options.max_retries.saturating_add(1);
        if runs >= allowed {
            return Err(format!(
                "task {task_id} already used all {allowed} of its attempts (max_retries {})",
                task.spec.options.max_retries
            ));
        }
        if let Some(last) = task.attempts.last_mut()
            && last.cause.is_none()
        {
            last.cause = Some(format!("output lost: {reason}"));
        }
        task.state = TaskState::Pending;
        let seq = task.seq;
        self.pending_tasks.insert(seq, task_id);
        self.unfinished_tasks += 1;
        if let Some(o) = self.objects.get_mut(&task_id.return_object()) {
            o.state = ObjectState::Pending;
            o.error = None;
        }
        self.fail_if_args_gone(task_id);
        Ok(())
    }
}
