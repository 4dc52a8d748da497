//! The only place in the client that turns prost messages into SDK types and back, so the rest
//! of the SDK and the CLI work with typed ids and enums. Malformed ids from a node become
//! [`Error::Protocol`] rather than panics.

use xnai_proto::ids::{ActorId, ObjectId, TaskId};
use xnai_proto::pb;

use super::error::{Error, Result};
use super::types::{
    ActorInfo, ActorOptions, ActorState, Arg, ClusterStatus, HeadStatus, ObjectInfo,
    ObjectLocation, ObjectRef, ObjectState, Resources, SpillStatus, StateSize, TaskOptions,
    WorkerStatus,
};

/// Parses an object id a node sent.
pub(crate) fn object_id(s: &str) -> Result<ObjectId> {
    ObjectId::parse(s).map_err(|e| Error::Protocol(e.to_string()))
}

/// Parses an actor id a node sent.
pub(crate) fn actor_id(s: &str) -> Result<ActorId> {
    ActorId::parse(s).map_err(|e| Error::Protocol(e.to_string()))
}

pub(crate) fn arg_to_pb(a: Arg) -> pb::Arg {
    let kind = match a {
        Arg::Value(b) => pb::arg::Kind::Value(b.into()),
        Arg::Ref(r) => pb::arg::Kind::ObjectId(r.id().hex()),
    };
    pb::Arg { kind: Some(kind) }
}

pub(crate) fn resources_to_pb(r: Resources) -> pb::Resources {
    pb::Resources {
        cpus: r.cpus,
        memory_bytes: r.memory_bytes,
        labels: r.labels.into_iter().collect(),
    }
}

pub(crate) fn resources_from_pb(r: Option<pb::Resources>) -> Resources {
    let r = r.unwrap_or_default();
    Resources {
        cpus: r.cpus,
        memory_bytes: r.memory_bytes,
        labels: r.labels.into_iter().collect(),
    }
}

pub(crate) fn task_options_to_pb(o: TaskOptions) -> pb::TaskOptions {
    pb::TaskOptions {
        max_retries: o.max_retries,
        retry_exceptions: o.retry_exceptions,
        resources: o.resources.map(resources_to_pb),
    }
}

pub(crate) fn actor_options_to_pb(o: ActorOptions) -> pb::ActorOptions {
    pb::ActorOptions {
        name: o.name.unwrap_or_default(),
        max_restarts: o.max_restarts,
        max_task_retries: o.max_task_retries,
        resources: o.resources.map(resources_to_pb),
        max_concurrency: o.max_concurrency,
        detached: o.detached,
    }
}

fn object_state(s: i32) -> ObjectState {
    match pb::ObjectState::try_from(s) {
        Ok(pb::ObjectState::Pending) => ObjectState::Pending,
        Ok(pb::ObjectState::Ready) => ObjectState::Ready,
        Ok(pb::ObjectState::Failed) => ObjectState::Failed,
        Ok(pb::ObjectState::Lost) => ObjectState::Lost,
        Ok(pb::ObjectState::Freed) => ObjectState::Freed,
        _ => ObjectState::Unknown,
    }
}

fn actor_state(s: i32) -> ActorState {
    match pb::ActorState::try_from(s) {
        Ok(pb::ActorState::Pending) => ActorState::Pending,
        Ok(pb::ActorState::Starting) => ActorState::Starting,
        Ok(pb::ActorState::Alive) => ActorState::Alive,
        Ok(pb::ActorState::Restarting) => ActorState::Restarting,
        Ok(pb::ActorState::Dead) => ActorState::Dead,
        _ => ActorState::Unknown,
    }
}

pub(crate) fn location_from_pb(l: pb::ObjectLocation) -> ObjectLocation {
    ObjectLocation {
        worker_id: l.worker_id,
        address: l.address,
    }
}

pub(crate) fn object_info_from_pb(o: pb::ObjectInfo) -> Result<ObjectInfo> {
    let producing_task_id = if o.producing_task_id.is_empty() {
        None
    } else {
        Some(TaskId::parse(&o.producing_task_id).map_err(|e| Error::Protocol(e.to_string()))?)
    };
    Ok(ObjectInfo {
        object_id: object_id(&o.object_id)?,
        state: object_state(o.state),
        size: o.size,
        crc32: o.crc32,
        locations: o.locations.into_iter().map(location_from_pb).collect(),
        producing_task_id,
        error: o.error,
    })
}

pub(crate) fn actor_info_from_pb(a: pb::ActorInfo) -> Result<ActorInfo> {
    Ok(ActorInfo {
        actor_id: actor_id(&a.actor_id)?,
        name: a.name,
        class: a.class,
        state: actor_state(a.state),
        worker_id: a.worker_id,
        address: a.address,
        restarts: a.restarts,
        error: a.error,
    })
}

pub(crate) fn object_refs(ids: &[String]) -> Result<Vec<ObjectRef>> {
    ids.iter()
        .map(|s| object_id(s).map(ObjectRef::new))
        .collect()
}

pub(crate) fn cluster_status_from_pb(s: pb::ClusterStatusReply) -> ClusterStatus {
    ClusterStatus {
        heads: s
            .heads
            .into_iter()
            .map(|h| HeadStatus {
                id: h.id,
                address: h.address,
                role: h.role,
                term: h.term,
                commit_index: h.commit_index,
                pid: h.pid,
            })
            .collect(),
        workers: s
            .workers
            .into_iter()
            .map(|w| WorkerStatus {
                worker_id: w.worker_id,
                address: w.address,
                pid: w.pid,
                state: w.state,
                total: resources_from_pb(w.total),
                available: resources_from_pb(w.available),
                arena_used: w.arena_used,
                arena_capacity: w.arena_capacity,
                pressure: w.pressure,
                breaker: w.breaker,
                running_tasks: w.running_tasks,
                spill: w
                    .spill
                    .map(|s| SpillStatus {
                        capacity: s.capacity,
                        used: s.used,
                        objects: s.objects,
                        spills: s.spills,
                        spilled_bytes: s.spilled_bytes,
                        restores: s.restores,
                        restored_bytes: s.restored_bytes,
                    })
                    .unwrap_or_default(),
            })
            .collect(),
        actors: s.actors,
        tasks: s.tasks,
        objects: s.objects,
        pending_tasks: s.pending_tasks,
        state: s.state.map(state_size_from_pb).unwrap_or_default(),
    }
}

fn state_size_from_pb(z: pb::StateSize) -> StateSize {
    StateSize {
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
mod tests {
    use super::*;

    #[test]
    fn object_info_round_trips_states_and_ids() {
        let t = TaskId::random();
        let info = object_info_from_pb(pb::ObjectInfo {
            object_id: t.return_object().hex(),
            state: pb::ObjectState::Failed as i32,
            producing_task_id: t.hex(),
            error: "boom".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(info.state, ObjectState::Failed);
        assert_eq!(info.producing_task_id, Some(t));
        let bad = object_info_from_pb(pb::ObjectInfo {
            object_id: "zz".into(),
            ..Default::default()
        });
        assert!(matches!(bad, Err(Error::Protocol(_))));
    }
}
