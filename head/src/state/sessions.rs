//! Client sessions and freeing in `ControlState::apply`. A task submitted in a session gives
//! its output to that session; when the session releases it (dropped refs) or ends (closed, or
//! its lease expired), the object is freed as soon as no live work (a pending or running task's
//! argument) and no lineage (the inputs of a live object's producing task) needs it. Freeing
//! asks the runtime to delete every copy (`Effect::DeleteObjects`) and takes the object out of
//! the directory ([`super::retention`]). Objects without a session
//! (CLI submissions and puts) live until they are released explicitly (`session_id: None`).

use std::collections::BTreeMap;

use xnai_proto::ids::{ObjectId, SessionId, TaskId, WorkerId};

use super::ControlState;
use super::command::{Effect, Outcome};
use super::deps::refs;
use super::types::*;

impl ControlState {
    pub(super) fn open_session(&mut self, session_id: SessionId, lease_ms: u64) -> Outcome {
        self.sessions
            .entry(session_id)
            .or_insert(SessionRecord { lease_ms });
        Outcome::SessionOpened { session_id }
    }

    pub(super) fn close_session(&mut self, session_id: SessionId, _reason: &str) -> Outcome {
        if self.sessions.remove(&session_id).is_none() {
            return Outcome::Ignored(format!("session {session_id} is not open"));
        }
        let held: Vec<ObjectId> = self
            .objects
            .iter()
            .filter(|(_, o)| o.owner == Some(session_id) && !o.released)
            .map(|(id, _)| *id)
            .collect();
        self.release_objects(Some(session_id), &held)
    }

    pub(super) fn release_objects(
        &mut self,
        session_id: Option<SessionId>,
        object_ids: &[ObjectId],
    ) -> Outcome {
        for id in object_ids {
            let Some(o) = self.objects.get_mut(id) else {
                continue;
            };
            if session_id.is_some() && o.owner != session_id {
                continue;
            }
            o.released = true;
            self.try_free(*id);
        }
        Outcome::Applied
    }

    /// A task finished or failed for good: its output and arguments may be free now (read
    /// the arguments first: freeing the output forgets the task's record).
    pub(super) fn task_done(&mut self, task_id: TaskId) {
        let args: Vec<ObjectId> = self
            .tasks
            .get(&task_id)
            .map(|t| refs(&t.spec.args))
            .unwrap_or_default();
        self.try_free(task_id.return_object());
        for a in args {
            self.try_free(a);
        }
    }

    /// Free `id` if it was released and nothing needs it; then look again at the inputs of its
    /// producing task, whose lineage need may have ended with it.
    pub(super) fn try_free(&mut self, id: ObjectId) {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            let free = self.objects.get(&id).is_some_and(|o| {
                o.released && !matches!(o.state, ObjectState::Pending | ObjectState::Freed)
            }) && !self.needed(id);
            if !free {
                continue;
            }
            if let Some(t) = id.producing_task().and_then(|t| self.tasks.get(&t)) {
                work.extend(refs(&t.spec.args));
            }
            self.free_object(id);
        }
    }

    /// Ask every holder of `id` to delete its copy and take it out of the directory (a
    /// tombstone remains, and its producing task's record goes too if the task is done).
    pub(super) fn free_object(&mut self, id: ObjectId) {
        let Some(o) = self.objects.get_mut(&id) else {
            return;
        };
        for worker_id in std::mem::take(&mut o.locations) {
            self.fx.push(Effect::DeleteObjects {
                worker_id,
                meant_for: worker_id,
                object_ids: vec![id],
            });
        }
        self.forget_object(id);
    }

    /// Merge the `DeleteObjects` effects of one command into one per worker.
    pub(super) fn coalesce_deletes(effects: Vec<Effect>) -> Vec<Effect> {
        let mut deletes: BTreeMap<(WorkerId, WorkerId), Vec<ObjectId>> = BTreeMap::new();
        let mut out = Vec::with_capacity(effects.len());
        for e in effects {
            match e {
                Effect::DeleteObjects {
                    worker_id,
                    meant_for,
                    object_ids,
                } => deletes
                    .entry((worker_id, meant_for))
                    .or_default()
                    .extend(object_ids),
                other => out.push(other),
            }
        }
        out.extend(
            deletes.into_iter().map(
                |((worker_id, meant_for), object_ids)| Effect::DeleteObjects {
                    worker_id,
                    meant_for,
                    object_ids,
                },
            ),
        );
        out
    }
}
