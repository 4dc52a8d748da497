//! Protobuf <-> domain conversions, all in one place: ids and names are checked here (so bad
//! input is refused with INVALID_ARGUMENT before anything is proposed), and state records are
//! turned into the wire messages the head sends (the head->worker messages are converted in
//! `worker_link`).

use xnai_proto::ids::{ObjectId, WorkerId};
use xnai_proto::limits::{MAX_INLINE_ARGS_BYTES, MAX_NAME_BYTES};
use xnai_proto::pb;

use crate::error::{HeadError, Result};
use crate::soft::{SoftWorker, SpillFigures};
use crate::state::{
    ActorOptions, ActorRecord, ActorState, Arg, BreakerState, ControlState, CopyKind, ObjectRecord,
    ObjectState, Resources, TaskOptions, TaskState, WorkerRecord, WorkerState,
};

/// Longest request id accepted.
const MAX_REQUEST_ID_BYTES: usize = 1024;
/// Most CPUs one request or worker may name.
const MAX_CPUS: f64 = 1_000_000.0;

/// A write's request id: non-empty and of reasonable length.
pub fn request_id(id: String) -> Result<String> {
    if id.is_empty() {
        return Err(HeadError::MissingRequestId);
    }
    if id.len() > MAX_REQUEST_ID_BYTES {
        return Err(HeadError::InvalidArgument(format!(
            "request_id is {} bytes, over {MAX_REQUEST_ID_BYTES}",
            id.len()
        )));
    }
    Ok(id)
}

/// A function, class or actor name: 1 to `MAX_NAME_BYTES` bytes.
pub fn name(what: &'static str, s: String) -> Result<String> {
    if s.is_empty() || s.len() > MAX_NAME_BYTES {
        return Err(HeadError::BadName { what, len: s.len() });
    }
    Ok(s)
}

/// Task or constructor arguments; inline bytes together at most `MAX_INLINE_ARGS_BYTES`.
pub fn args_from_pb(args: Vec<pb::Arg>) -> Result<Vec<Arg>> {
    let inline: usize = args
        .iter()
        .map(|a| match &a.kind {
            Some(pb::arg::Kind::Value(v)) => v.len(),
            _ => 0,
        })
        .sum();
    if inline > MAX_INLINE_ARGS_BYTES {
        return Err(HeadError::InlineArgsTooBig { size: inline });
    }
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match a.kind {
            Some(pb::arg::Kind::Value(v)) => Ok(Arg::Inline(v)),
            Some(pb::arg::Kind::ObjectId(id)) => Ok(Arg::Ref(ObjectId::parse(&id)?)),
            None => Err(HeadError::InvalidArgument(format!(
                "argument {i} has neither value nor object_id"
            ))),
        })
        .collect()
}

/// Resources from the wire, or `default` when unset.
pub fn resources_from_pb(r: Option<pb::Resources>, default: Resources) -> Result<Resources> {
    let Some(r) = r else { return Ok(default) };
    if !r.cpus.is_finite() || !(0.0..=MAX_CPUS).contains(&r.cpus) {
        return Err(HeadError::InvalidArgument(format!(
            "cpus must be between 0 and {MAX_CPUS}, got {}",
            r.cpus
        )));
    }
    Ok(Resources {
        milli_cpus: (r.cpus * 1000.0).round() as u64,
        memory_bytes: r.memory_bytes,
        labels: r.labels.into_iter().collect(),
    })
}

/// Task options; unset fields get the defaults (3 retries, 1 CPU).
pub fn task_options_from_pb(o: Option<pb::TaskOptions>) -> Result<TaskOptions> {
    let defaults = TaskOptions::default();
    let Some(o) = o else { return Ok(defaults) };
    Ok(TaskOptions {
        max_retries: o.max_retries.unwrap_or(defaults.max_retries),
        retry_exceptions: o.retry_exceptions,
        resources: resources_from_pb(o.resources, defaults.resources)?,
        session: None,
    })
}

/// Actor options; unset fields get the defaults (anonymous, no restarts, 0 CPUs).
pub fn actor_options_from_pb(o: Option<pb::ActorOptions>) -> Result<ActorOptions> {
    let Some(o) = o else {
        return Ok(ActorOptions::default());
    };
    if o.max_restarts < -1 || o.max_task_retries < -1 {
        return Err(HeadError::InvalidArgument(
            "max_restarts and max_task_retries must be -1 (unlimited) or more".into(),
        ));
    }
    let name = if o.name.is_empty() {
        None
    } else {
        Some(name("actor name", o.name)?)
    };
    Ok(ActorOptions {
        name,
        max_restarts: o.max_restarts,
        max_task_retries: o.max_task_retries,
        resources: resources_from_pb(o.resources, Resources::default())?,
        max_concurrency: o.max_concurrency,
        detached: o.detached,
    })
}

/// How a reported copy came to be.
pub fn copy_kind_from_pb(kind: i32) -> Result<CopyKind> {
    match pb::CopyKind::try_from(kind) {
        Ok(pb::CopyKind::Put) => Ok(CopyKind::Put),
        Ok(pb::CopyKind::Pulled) => Ok(CopyKind::Pulled),
        _ => Err(HeadError::InvalidArgument(format!(
            "kind must be COPY_KIND_PUT or COPY_KIND_PULLED, got {kind}"
        ))),
    }
}

/// Resources for the wire.
pub fn resources_to_pb(r: &Resources) -> pb::Resources {
    pb::Resources {
        cpus: r.milli_cpus as f64 / 1000.0,
        memory_bytes: r.memory_bytes,
        labels: r
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn location(s: &ControlState, w: &WorkerId) -> pb::ObjectLocation {
    let address = s
        .workers
        .get(w)
        .map(|r| r.address.clone())
        .unwrap_or_default();
    pb::ObjectLocation {
        worker_id: w.hex(),
        address,
    }
}

/// An object directory entry for the wire.
pub fn object_info_to_pb(s: &ControlState, id: ObjectId, o: &ObjectRecord) -> pb::ObjectInfo {
    let state = match o.state {
        ObjectState::Pending => pb::ObjectState::Pending,
        ObjectState::Ready => pb::ObjectState::Ready,
        ObjectState::Failed => pb::ObjectState::Failed,
        ObjectState::Lost => pb::ObjectState::Lost,
        ObjectState::Freed => pb::ObjectState::Freed,
    };
    pb::ObjectInfo {
        object_id: id.hex(),
        state: state as i32,
        size: o.size,
        crc32: o.crc32,
        locations: o.locations.iter().map(|w| location(s, w)).collect(),
        producing_task_id: o.producing_task.map(|t| t.hex()).unwrap_or_default(),
        error: o.error.clone().unwrap_or_default(),
    }
}

/// An actor for the wire.
pub fn actor_info_to_pb(
    s: &ControlState,
    id: xnai_proto::ids::ActorId,
    a: &ActorRecord,
) -> pb::ActorInfo {
    let state = match a.state {
        ActorState::Pending => pb::ActorState::Pending,
        ActorState::Starting => pb::ActorState::Starting,
        ActorState::Alive => pb::ActorState::Alive,
        ActorState::Restarting => pb::ActorState::Restarting,
        ActorState::Dead => pb::ActorState::Dead,
    };
    let loc = a.worker.map(|w| location(s, &w));
    pb::ActorInfo {
        actor_id: id.hex(),
        name: a.spec.options.name.clone().unwrap_or_default(),
        class: a.spec.class.clone(),
        state: state as i32,
        worker_id: loc
            .as_ref()
            .map(|l| l.worker_id.clone())
            .unwrap_or_default(),
        address: loc.map(|l| l.address).unwrap_or_default(),
        restarts: a.restarts,
        error: a.error.clone().unwrap_or_default(),
    }
}

/// A worker row of `ClusterStatus`, mixing logged state and the latest heartbeat.
pub fn worker_status_to_pb(
    id: WorkerId,
    w: &WorkerRecord,
    soft: Option<&SoftWorker>,
) -> pb::WorkerStatus {
    let fallback = SoftWorker {
        silent_ms: u64::MAX,
        ..SoftWorker::default()
    };
    let soft = soft.unwrap_or(&fallback);
    // Silent but not yet declared dead (within its lease): degraded, not dead.
    let state = if w.state == WorkerState::Dead {
        "dead"
    } else if soft.placeable() && w.breaker == BreakerState::Closed {
        "alive"
    } else {
        "degraded"
    };
    pb::WorkerStatus {
        worker_id: id.hex(),
        address: w.address.clone(),
        pid: w.pid,
        state: state.into(),
        total: Some(resources_to_pb(&w.total)),
        available: Some(resources_to_pb(&w.available)),
        arena_used: soft.arena_used,
        arena_capacity: w.arena_capacity,
        pressure: soft.pressure.as_str().into(),
        breaker: w.breaker.as_str().into(),
        running_tasks: soft.running_tasks,
        spill: Some(spill_to_pb(&soft.spill)),
    }
}

/// Spill figures of a heartbeat (zeros when the worker sent none).
pub fn spill_from_pb(s: Option<&pb::SpillStats>) -> SpillFigures {
    s.map(|s| SpillFigures {
        capacity: s.capacity,
        used: s.used,
        objects: s.objects,
        spills: s.spills,
        spilled_bytes: s.spilled_bytes,
        restores: s.restores,
        restored_bytes: s.restored_bytes,
    })
    .unwrap_or_default()
}

fn spill_to_pb(s: &SpillFigures) -> pb::SpillStats {
    pb::SpillStats {
        capacity: s.capacity,
        used: s.used,
        objects: s.objects,
        spills: s.spills,
        spilled_bytes: s.spilled_bytes,
        restores: s.restores,
        restored_bytes: s.restored_bytes,
    }
}

/// Whether a task counts as pending for `ClusterStatus`.
pub fn is_pending(state: TaskState) -> bool {
    state == TaskState::Pending
}

/// The control state's size for `ClusterStatus`.
pub fn state_size_to_pb(z: &crate::state::StateSize) -> pb::StateSize {
    pb::StateSize {
        workers: z.workers,
        dead_workers: z.dead_workers,
        tasks: z.tasks,
        objects: z.objects,
        actors: z.actors,
        dead_actors: z.dead_actors,
        sessions: z.sessions,
        history: z.history,
        tombstones: z.tombstones,
        requests: z.requests,
        inline_arg_bytes: z.inline_arg_bytes,
        inline_arg_budget: z.inline_arg_budget,
        approx_bytes: z.approx_bytes,
    }
}

#[cfg(test)]
mod tests;
