//! Actor commands of `ControlState::apply`: create, place, alive, dead (with restarts), kill.
//! Names stay unique among live actors and are freed when an actor dies or is killed; dead
//! actors are kept in bounded numbers ([`super::retention`]).

use xnai_proto::ids::{ActorId, WorkerId};

use super::ControlState;
use super::command::{ApplyError, Effect, Outcome};
use super::retention::inline_len;
use super::types::*;

impl ControlState {
    pub(super) fn create_actor(&mut self, actor_id: ActorId, spec: ActorSpec) -> Outcome {
        let offered = self.offered_classes();
        if !offered.is_empty() && !offered.contains(&spec.class) {
            return Outcome::Rejected(ApplyError::UnknownClass {
                class: spec.class,
                offered,
            });
        }
        if let Some(name) = &spec.options.name
            && self.names.contains_key(name)
        {
            return Outcome::Rejected(ApplyError::NameTaken(name.clone()));
        }
        if self.actors.contains_key(&actor_id) {
            return Outcome::Rejected(ApplyError::Conflict(format!("actor {actor_id} exists")));
        }
        for arg in &spec.args {
            if let Arg::Ref(id) = arg
                && !self.objects.contains_key(id)
            {
                return Outcome::Rejected(ApplyError::NoSuchObject(*id));
            }
        }
        if let Err(e) = self.check_inline_budget(&spec.args) {
            return Outcome::Rejected(e);
        }
        if let Some(name) = &spec.options.name {
            self.names.insert(name.clone(), actor_id);
        }
        self.inline_bytes += inline_len(&spec.args);
        self.arg_index.add_actor(actor_id, &spec.args);
        let seq = self.take_seq();
        let record = ActorRecord {
            seq,
            spec,
            state: ActorState::Pending,
            worker: None,
            restarts: 0,
            error: None,
        };
        self.actors.insert(actor_id, record);
        self.pending_actors.insert(seq, actor_id);
        Outcome::ActorCreated { actor_id }
    }

    pub(super) fn place_actor(
        &mut self,
        actor_id: ActorId,
        worker_id: WorkerId,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        let Some(actor) = self.actors.get_mut(&actor_id) else {
            return Outcome::Ignored(format!("no actor {actor_id}"));
        };
        if !matches!(actor.state, ActorState::Pending | ActorState::Restarting) {
            return Outcome::Ignored(format!("actor {actor_id} is not waiting for a worker"));
        }
        let Some(worker) = self
            .workers
            .get_mut(&worker_id)
            .filter(|w| w.state == WorkerState::Alive)
        else {
            return Outcome::Ignored(format!("no worker {worker_id}"));
        };
        let need = &actor.spec.options.resources;
        if !worker.available.can_hold(need) || !worker.total.has_labels(need) {
            return Outcome::Ignored(format!("worker {worker_id} cannot hold actor {actor_id}"));
        }
        worker.available.take(need);
        actor.state = ActorState::Starting;
        actor.worker = Some(worker_id);
        self.pending_actors.remove(&actor.seq);
        fx.push(Effect::StartActor {
            actor_id,
            worker_id,
        });
        Outcome::Applied
    }

    pub(super) fn actor_alive(
        &mut self,
        actor_id: ActorId,
        worker_id: WorkerId,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        match self.actors.get_mut(&actor_id) {
            Some(a) if a.state == ActorState::Starting && a.worker == Some(worker_id) => {
                a.state = ActorState::Alive;
                Outcome::Applied
            }
            Some(a) if a.state == ActorState::Dead => {
                // Killed while starting: stop the instance the worker just built.
                fx.push(Effect::StopActor {
                    actor_id,
                    worker_id,
                });
                Outcome::Ignored(format!("actor {actor_id} was killed while starting"))
            }
            _ => Outcome::Ignored(format!("actor {actor_id} is not starting on {worker_id}")),
        }
    }

    /// Stop counting an actor against its worker's resources.
    fn release_actor(&mut self, actor_id: ActorId) -> Option<WorkerId> {
        let actor = self.actors.get_mut(&actor_id)?;
        let w = actor.worker.take()?;
        if let Some(worker) = self.workers.get_mut(&w) {
            worker
                .available
                .give_back(&actor.spec.options.resources, &worker.total);
        }
        Some(w)
    }

    pub(super) fn actor_dead(
        &mut self,
        actor_id: ActorId,
        worker_id: WorkerId,
        kind: FailureKind,
        error: String,
    ) -> Outcome {
        match self.actors.get(&actor_id) {
            Some(a)
                if matches!(a.state, ActorState::Starting | ActorState::Alive)
                    && a.worker == Some(worker_id) => {}
            _ => return Outcome::Ignored(format!("actor {actor_id} is not on {worker_id}")),
        }
        self.release_actor(actor_id);
        let Some(actor) = self.actors.get_mut(&actor_id) else {
            return Outcome::Ignored(format!("no actor {actor_id}"));
        };
        let max = actor.spec.options.max_restarts;
        let may_restart = max < 0 || (actor.restarts as i64) < max as i64;
        if kind == FailureKind::System && may_restart {
            actor.restarts += 1;
            actor.state = ActorState::Restarting;
            self.pending_actors.insert(actor.seq, actor_id);
        } else {
            actor.state = ActorState::Dead;
            actor.error = Some(error);
            self.free_name(actor_id);
            self.retire_actor(actor_id);
        }
        Outcome::Applied
    }

    pub(super) fn kill_actor(&mut self, actor_id: ActorId, fx: &mut Vec<Effect>) -> Outcome {
        let Some(actor) = self.actors.get_mut(&actor_id) else {
            return Outcome::Rejected(ApplyError::NoSuchActor(actor_id));
        };
        if actor.state == ActorState::Dead {
            return Outcome::ActorKilled { actor_id };
        }
        actor.state = ActorState::Dead;
        actor.error = Some("killed by request".to_string());
        let seq = actor.seq;
        self.pending_actors.remove(&seq);
        if let Some(worker_id) = self.release_actor(actor_id) {
            fx.push(Effect::StopActor {
                actor_id,
                worker_id,
            });
        }
        self.free_name(actor_id);
        self.retire_actor(actor_id);
        Outcome::ActorKilled { actor_id }
    }

    fn free_name(&mut self, actor_id: ActorId) {
        let name = self
            .actors
            .get(&actor_id)
            .and_then(|a| a.spec.options.name.clone());
        if let Some(name) = name
            && self.names.get(&name) == Some(&actor_id)
        {
            self.names.remove(&name);
        }
    }
}
