//! Tests of the wire conversions: validation errors and round trips of the main messages.

use super::*;
use tonic::Code;
use xnai_proto::ids::TaskId;

fn value(v: &[u8]) -> pb::Arg {
    pb::Arg {
        kind: Some(pb::arg::Kind::Value(v.to_vec())),
    }
}

#[test]
fn args_are_checked() {
    let id = ObjectId(3 << 8);
    let obj = pb::Arg {
        kind: Some(pb::arg::Kind::ObjectId(id.hex())),
    };
    assert_eq!(
        args_from_pb(vec![value(b"a"), obj]).ok(),
        Some(vec![Arg::Inline(b"a".to_vec()), Arg::Ref(id)])
    );
    let big = vec![value(&vec![0; MAX_INLINE_ARGS_BYTES]), value(b"x")];
    let e = tonic::Status::from(
        args_from_pb(big)
            .err()
            .unwrap_or(HeadError::MissingRequestId),
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("pass it by reference"),
        "{}",
        e.message()
    );
    let bad = pb::Arg {
        kind: Some(pb::arg::Kind::ObjectId("nope".into())),
    };
    let e = tonic::Status::from(
        args_from_pb(vec![bad])
            .err()
            .unwrap_or(HeadError::MissingRequestId),
    );
    assert!(
        e.message().contains("malformed object id"),
        "{}",
        e.message()
    );
    assert!(args_from_pb(vec![pb::Arg { kind: None }]).is_err());
}

#[test]
fn options_get_defaults_and_limits() {
    let o = task_options_from_pb(None).ok();
    assert_eq!(o, Some(TaskOptions::default()));
    let o = task_options_from_pb(Some(pb::TaskOptions {
        max_retries: Some(0),
        retry_exceptions: true,
        resources: Some(pb::Resources {
            cpus: 0.5,
            memory_bytes: 10,
            labels: [("k".into(), "v".into())].into(),
        }),
    }));
    let o = o.ok().unwrap_or_default();
    assert_eq!(
        (
            o.max_retries,
            o.resources.milli_cpus,
            o.resources.labels.len()
        ),
        (0, 500, 1)
    );
    let neg = pb::Resources {
        cpus: -1.0,
        ..Default::default()
    };
    assert!(resources_from_pb(Some(neg), Resources::default()).is_err());
    let a = actor_options_from_pb(Some(pb::ActorOptions {
        name: "n".repeat(MAX_NAME_BYTES + 1),
        ..Default::default()
    }));
    assert!(matches!(a, Err(HeadError::BadName { .. })));
    assert_eq!(
        actor_options_from_pb(None).ok(),
        Some(ActorOptions::default())
    );
    assert!(matches!(
        request_id(String::new()),
        Err(HeadError::MissingRequestId)
    ));
    assert!(copy_kind_from_pb(0).is_err());
    assert_eq!(
        copy_kind_from_pb(pb::CopyKind::Put as i32).ok(),
        Some(CopyKind::Put)
    );
}

#[test]
fn records_become_wire_messages() {
    let mut s = ControlState::default();
    let w = WorkerId(1 << 8);
    s.apply(crate::state::Command::RegisterWorker {
        request_id: "r".into(),
        worker_id: w,
        address: "127.0.0.1:9".into(),
        pid: 5,
        resources: Resources::cpus(2),
        arena_capacity: 100,
        functions: vec![],
        classes: vec![],
    });
    let task = TaskId(4 << 8);
    let mut o = ObjectRecord {
        state: ObjectState::Ready,
        size: 3,
        crc32: 7,
        locations: [w].into(),
        producing_task: Some(task),
        error: None,
        owner: None,
        released: false,
    };
    let info = object_info_to_pb(&s, task.return_object(), &o);
    assert_eq!(info.state, pb::ObjectState::Ready as i32);
    assert_eq!(
        info.locations,
        vec![pb::ObjectLocation {
            worker_id: w.hex(),
            address: "127.0.0.1:9".into()
        }]
    );
    assert_eq!(info.producing_task_id, task.hex());
    o.state = ObjectState::Failed;
    o.error = Some("boom".into());
    assert_eq!(
        object_info_to_pb(&s, task.return_object(), &o).error,
        "boom"
    );
    // No heartbeat yet but not declared dead: degraded (no placements), not dead.
    let status = worker_status_to_pb(w, &s.workers[&w], None);
    assert_eq!(
        (status.state.as_str(), status.breaker.as_str()),
        ("degraded", "closed")
    );
    assert_eq!(status.total.map(|t| t.cpus), Some(2.0));
    let live = SoftWorker {
        arena_used: 50,
        ..SoftWorker::default()
    };
    assert_eq!(
        worker_status_to_pb(w, &s.workers[&w], Some(&live)).state,
        "alive"
    );
}
