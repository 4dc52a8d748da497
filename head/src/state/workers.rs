//! Worker commands of `ControlState::apply`: registration (which retires an older worker at
//! the same address: that process is gone) and declaring a worker dead, which fails over its
//! running tasks, actors and object copies through the ordinary retry and restart rules.

use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};

use super::ControlState;
use super::command::{Effect, Outcome};
use super::types::*;

impl ControlState {
    pub(super) fn register_worker(&mut self, worker_id: WorkerId, record: WorkerRecord) -> Outcome {
        let replaced: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(id, w)| {
                **id != worker_id && w.state == WorkerState::Alive && w.address == record.address
            })
            .map(|(id, _)| *id)
            .collect();
        // The same process back after being declared dead: drop what it still holds. The
        // delete is fenced to the old id: a worker that dropped its old objects itself before
        // registering ignores it, so it cannot race a rebuild placed on the new id (seed 18).
        let returning: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Dead && w.address == record.address && w.pid == record.pid
            })
            .map(|(id, _)| *id)
            .collect();
        for old in returning {
            let Some(w) = self.workers.get_mut(&old) else {
                continue;
            };
            let objects = std::mem::take(&mut w.left_objects);
            let actors = std::mem::take(&mut w.left_actors);
            if !objects.is_empty() {
                self.fx.push(Effect::DeleteObjects {
                    worker_id,
                    meant_for: old,
                    object_ids: objects.into_iter().collect(),
                });
            }
            for actor_id in actors {
                self.fx.push(Effect::StopActor {
                    actor_id,
                    worker_id,
                });
            }
        }
        for old in replaced {
            let reason = format!(
                "a new worker {worker_id} registered at its address {}",
                record.address
            );
            self.worker_dead(old, &reason);
        }
        self.workers.insert(worker_id, record);
        Outcome::WorkerRegistered { worker_id }
    }

    pub(super) fn worker_dead(&mut self, worker_id: WorkerId, reason: &str) -> Outcome {
        match self.workers.get_mut(&worker_id) {
            Some(w) if w.state == WorkerState::Alive => w.state = WorkerState::Dead,
            _ => return Outcome::Ignored(format!("worker {worker_id} is not alive")),
        }
        let error = format!("worker {worker_id} died: {reason}");
        let running: Vec<(TaskId, u32)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.state == TaskState::Running && t.worker == Some(worker_id))
            .map(|(id, t)| (*id, t.attempts.len() as u32))
            .collect();
        for (task_id, attempt) in running.iter().copied() {
            self.task_failed(
                task_id,
                worker_id,
                attempt,
                FailureKind::System,
                error.clone(),
            );
        }
        let actors: Vec<ActorId> = self
            .actors
            .iter()
            .filter(|(_, a)| a.worker == Some(worker_id))
            .filter(|(_, a)| matches!(a.state, ActorState::Starting | ActorState::Alive))
            .map(|(id, _)| *id)
            .collect();
        for actor_id in actors.iter().copied() {
            self.actor_dead(actor_id, worker_id, FailureKind::System, error.clone());
        }
        let copies: Vec<ObjectId> = self
            .objects
            .iter()
            .filter(|(_, o)| o.locations.contains(&worker_id))
            .map(|(id, _)| *id)
            .collect();
        if let Some(w) = self.workers.get_mut(&worker_id) {
            w.left_objects.extend(copies.iter().copied());
            w.left_objects
                .extend(running.iter().map(|(t, _)| t.return_object()));
            w.left_actors.extend(actors.iter().copied());
        }
        self.remove_copies(worker_id, &copies, &error);
        self.retire_worker(worker_id);
        Outcome::Applied
    }

    pub(super) fn set_breaker(&mut self, worker_id: WorkerId, state: BreakerState) -> Outcome {
        match self.workers.get_mut(&worker_id) {
            Some(w) if w.breaker != state => {
                w.breaker = state;
                Outcome::Applied
            }
            Some(_) => Outcome::Ignored(format!("breaker of {worker_id} is already {state:?}")),
            None => Outcome::Ignored(format!("no worker {worker_id}")),
        }
    }
}
