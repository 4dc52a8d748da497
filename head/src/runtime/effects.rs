//! The effects the runtime carries out, each as one spawned future: dispatching a task attempt,
//! starting (with restart backoff), stopping an actor, deleting object copies. Every worker call
//! goes through that worker's circuit breaker; results come back as logged commands.

use std::sync::Arc;
use std::time::Duration;

use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};
use xnai_proto::net::Backoff;

use crate::log::CommandLog;
use crate::soft::Heartbeats;
use crate::state::{ActorState, Arg, Command, ControlState, Effect, FailureKind, TaskState};
use crate::worker_link::{
    ActorRequest, Breakers, CallFailed, DispatchArg, TaskReply, TaskRequest, WorkerPool,
};

/// First actor restart delay; doubles with every restart used, up to [`RESTART_BACKOFF_MAX`].
pub const RESTART_BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest actor restart delay.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What every effect future needs.
#[derive(Clone)]
pub(super) struct Handles {
    pub log: Arc<dyn CommandLog>,
    pub pool: Arc<dyn WorkerPool>,
    pub breakers: Arc<Breakers>,
    pub beats: Arc<Heartbeats>,
}

/// First hold of a task whose argument could not be fetched; doubles per miss.
pub const ARGUMENT_BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest such hold.
pub const ARGUMENT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Hold after a task's `misses`-th argument fetch failure (1-based).
pub fn argument_delay(misses: u32) -> Duration {
    Backoff::new(ARGUMENT_BACKOFF_START, ARGUMENT_BACKOFF_MAX).nth(misses.max(1))
}

/// Delay before starting an actor that has used `restarts` restarts (0 for a first start).
pub fn restart_delay(restarts: u32) -> Duration {
    Backoff::new(RESTART_BACKOFF_START, RESTART_BACKOFF_MAX).nth(restarts)
}

/// Effects that restart what was in flight: running tasks and starting actors.
pub(super) fn recovery_effects(s: &ControlState) -> Vec<Effect> {
    let tasks = s
        .tasks
        .iter()
        .filter(|(_, t)| t.state == TaskState::Running)
        .filter_map(|(id, t)| {
            let worker_id = t.worker?;
            Some(Effect::DispatchTask {
                task_id: *id,
                worker_id,
                attempt: t.attempts.len() as u32,
            })
        });
    let actors = s
        .actors
        .iter()
        .filter(|(_, a)| a.state == ActorState::Starting)
        .filter_map(|(id, a)| {
            Some(Effect::StartActor {
                actor_id: *id,
                worker_id: a.worker?,
            })
        });
    tasks.chain(actors).collect()
}

fn address_of(s: &ControlState, worker_id: WorkerId) -> Result<String, String> {
    s.workers
        .get(&worker_id)
        .map(|w| w.address.clone())
        .ok_or_else(|| format!("worker {worker_id} is not registered"))
}

fn dispatch_args(s: &ControlState, args: &[Arg]) -> Result<Vec<DispatchArg>, String> {
    args.iter()
        .map(|a| match a {
            Arg::Inline(bytes) => Ok(DispatchArg::Inline(bytes.clone())),
            Arg::Ref(id) => {
                let o = s
                    .objects
                    .get(id)
                    .ok_or_else(|| format!("argument object {id} is unknown"))?;
                let locations = o
                    .locations
                    .iter()
                    .filter_map(|w| s.workers.get(w).map(|r| (*w, r.address.clone())))
                    .collect();
                Ok(DispatchArg::Object {
                    object_id: *id,
                    size: o.size,
                    crc32: o.crc32,
                    locations,
                })
            }
        })
        .collect()
}

fn prepare_task(
    s: &ControlState,
    task_id: TaskId,
    worker_id: WorkerId,
) -> Result<(String, TaskRequest), String> {
    let address = address_of(s, worker_id)?;
    let task = s
        .tasks
        .get(&task_id)
        .ok_or_else(|| format!("task {task_id} is unknown"))?;
    let args = dispatch_args(s, &task.spec.args)?;
    let req = TaskRequest {
        task_id,
        object_id: task_id.return_object(),
        function: task.spec.function.clone(),
        args,
        milli_cpus: task.spec.options.resources.milli_cpus,
    };
    Ok((address, req))
}

async fn record(h: &Handles, command: Command, what: &str) {
    if let Err(e) = h.log.propose(vec![command]).await {
        tracing::warn!(error = %e, "cannot record {what}");
    }
}

pub(super) async fn dispatch_task(h: Handles, task_id: TaskId, worker_id: WorkerId, attempt: u32) {
    let prepared = h.log.state().read(|s| prepare_task(s, task_id, worker_id));
    let failed = |kind, error| Command::TaskFailed {
        task_id,
        worker_id,
        attempt,
        kind,
        error,
    };
    let command = match prepared {
        Err(why) => failed(FailureKind::System, why),
        Ok((address, req)) => {
            tracing::debug!(%address, "executing task");
            let call = h.pool.execute_task(&address, req);
            match h.breakers.call(worker_id, call).await {
                Ok(TaskReply::Stored { size, crc32 }) => {
                    tracing::debug!(size, "task finished");
                    Command::TaskFinished {
                        task_id,
                        worker_id,
                        attempt,
                        size,
                        crc32,
                    }
                }
                Ok(TaskReply::Failed(error)) => {
                    tracing::info!(%error, "task returned an application error");
                    failed(FailureKind::Application, error)
                }
                Ok(TaskReply::ArgumentUnavailable(error)) => {
                    let misses = h
                        .log
                        .state()
                        .read(|s| s.tasks.get(&task_id).map_or(0, |t| t.argument_misses()) + 1);
                    let delay = argument_delay(misses);
                    tracing::info!(%error, misses, ?delay, "task argument unavailable; backing off");
                    h.beats.hold(task_id, delay);
                    failed(FailureKind::ArgumentUnavailable, error)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "task dispatch failed");
                    failed(FailureKind::System, e.0)
                }
            }
        }
    };
    record(&h, command, "the task result").await;
}

pub(super) async fn start_actor(h: Handles, actor_id: ActorId, worker_id: WorkerId) {
    let prepared = h
        .log
        .state()
        .read(|s| -> Result<(String, ActorRequest, u32), String> {
            let address = address_of(s, worker_id)?;
            let actor = s
                .actors
                .get(&actor_id)
                .ok_or_else(|| format!("actor {actor_id} is unknown"))?;
            let args = dispatch_args(s, &actor.spec.args)?;
            let req = ActorRequest {
                actor_id,
                class: actor.spec.class.clone(),
                args,
                max_concurrency: actor.spec.options.max_concurrency,
            };
            Ok((address, req, actor.restarts))
        });
    let dead = |kind, error| Command::ActorDead {
        actor_id,
        worker_id,
        kind,
        error,
    };
    let command = match prepared {
        Err(why) => dead(FailureKind::System, why),
        Ok((address, req, restarts)) => {
            let delay = restart_delay(restarts);
            if !delay.is_zero() {
                tracing::info!(restarts, ?delay, "restarting actor after a backoff");
                tokio::time::sleep(delay).await;
            }
            let call = h.pool.start_actor(&address, req);
            match h.breakers.call(worker_id, call).await {
                Ok(None) => {
                    tracing::info!(restarts, "actor alive");
                    Command::ActorAlive {
                        actor_id,
                        worker_id,
                    }
                }
                Ok(Some(error)) => {
                    tracing::info!(%error, "actor constructor failed");
                    dead(FailureKind::Application, error)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start actor");
                    dead(FailureKind::System, e.0)
                }
            }
        }
    };
    record(&h, command, "the actor start").await;
}

pub(super) async fn stop_actor(h: Handles, actor_id: ActorId, worker_id: WorkerId) {
    let Ok(address) = h.log.state().read(|s| address_of(s, worker_id)) else {
        return;
    };
    let call = h.pool.stop_actor(&address, actor_id);
    match h.breakers.call(worker_id, call).await {
        Ok(()) => tracing::info!("actor stopped"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot stop actor; it is already dead in the head's state")
        }
    }
}

pub(super) async fn delete_objects(
    h: Handles,
    worker_id: WorkerId,
    meant_for: WorkerId,
    object_ids: Vec<ObjectId>,
) {
    // Skip copies the worker holds again by now (a rebuild placed there since).
    let (address, object_ids) = h.log.state().read(|s| {
        let keep: Vec<ObjectId> = object_ids
            .into_iter()
            .filter(|id| {
                !s.objects
                    .get(id)
                    .is_some_and(|o| o.locations.contains(&worker_id))
            })
            .collect();
        (address_of(s, worker_id), keep)
    });
    let Ok(address) = address else {
        return;
    };
    if object_ids.is_empty() {
        return;
    }
    let count = object_ids.len();
    let call = h.pool.delete_objects(&address, Some(meant_for), object_ids);
    match h.breakers.call(worker_id, call).await {
        Ok(()) => tracing::debug!(count, "object copies deleted"),
        Err(CallFailed(e)) => tracing::warn!(count, error = %e, "cannot delete object copies"),
    }
}
