//! Domain <-> protobuf conversions of the head->worker calls: task and actor requests with
//! their arguments resolved to locations, and ExecuteTask replies. Only this module of the
//! boundary sees the worker service's prost types.

use xnai_proto::pb;

use super::{ActorRequest, DispatchArg, TaskReply, TaskRequest};

fn task_arg_to_pb(a: DispatchArg) -> pb::TaskArg {
    let kind = match a {
        DispatchArg::Inline(v) => pb::task_arg::Kind::Value(v),
        DispatchArg::Object {
            object_id,
            size,
            crc32,
            locations,
        } => pb::task_arg::Kind::Object(pb::ObjectRefArg {
            object_id: object_id.hex(),
            size,
            crc32,
            locations: locations
                .into_iter()
                .map(|(w, address)| pb::ObjectLocation {
                    worker_id: w.hex(),
                    address,
                })
                .collect(),
        }),
    };
    pb::TaskArg { kind: Some(kind) }
}

/// `Worker.ExecuteTask` request.
pub(super) fn task_request_to_pb(r: TaskRequest) -> pb::ExecuteTaskRequest {
    pb::ExecuteTaskRequest {
        task_id: r.task_id.hex(),
        object_id: r.object_id.hex(),
        function: r.function,
        args: r.args.into_iter().map(task_arg_to_pb).collect(),
        cpus: Some(r.milli_cpus as f64 / 1000.0),
    }
}

/// `Worker.StartActor` request.
pub(super) fn actor_request_to_pb(r: ActorRequest) -> pb::StartActorRequest {
    pb::StartActorRequest {
        actor_id: r.actor_id.hex(),
        class: r.class,
        args: r.args.into_iter().map(task_arg_to_pb).collect(),
        max_concurrency: r.max_concurrency,
    }
}

/// `Worker.ExecuteTask` reply; an empty reply is a protocol error.
pub(super) fn task_reply_from_pb(
    r: pb::ExecuteTaskReply,
) -> std::result::Result<TaskReply, String> {
    match r.result {
        Some(pb::execute_task_reply::Result::Stored(s)) => Ok(TaskReply::Stored {
            size: s.size,
            crc32: s.crc32,
        }),
        Some(pb::execute_task_reply::Result::Error(e)) => Ok(TaskReply::Failed(e)),
        Some(pb::execute_task_reply::Result::ArgumentUnavailable(e)) => {
            Ok(TaskReply::ArgumentUnavailable(e))
        }
        None => Err("ExecuteTask reply has neither stored nor error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnai_proto::ids::{ObjectId, TaskId, WorkerId};

    #[test]
    fn requests_and_replies_cross_the_wire() {
        let task = TaskId(4 << 8);
        let w = WorkerId(1 << 8);
        let req = task_request_to_pb(TaskRequest {
            task_id: task,
            object_id: task.return_object(),
            function: "digest".into(),
            milli_cpus: 500,
            args: vec![DispatchArg::Object {
                object_id: ObjectId(8 << 8),
                size: 1,
                crc32: 2,
                locations: vec![(w, "a:1".into())],
            }],
        });
        assert_eq!(req.object_id, task.return_object().hex());
        assert_eq!(req.cpus, Some(0.5));
        let Some(pb::task_arg::Kind::Object(r)) = &req.args[0].kind else {
            panic!("{req:?}")
        };
        assert_eq!((r.size, r.locations[0].address.as_str()), (1, "a:1"));
        let stored = pb::ExecuteTaskReply {
            result: Some(pb::execute_task_reply::Result::Stored(pb::StoredObject {
                size: 9,
                crc32: 1,
            })),
        };
        assert_eq!(
            task_reply_from_pb(stored),
            Ok(TaskReply::Stored { size: 9, crc32: 1 })
        );
        assert!(task_reply_from_pb(pb::ExecuteTaskReply { result: None }).is_err());
        let req = actor_request_to_pb(ActorRequest {
            actor_id: xnai_proto::ids::ActorId(5 << 8),
            class: "counter".into(),
            args: vec![DispatchArg::Inline(b"7".to_vec())],
            max_concurrency: 2,
        });
        assert_eq!((req.class.as_str(), req.max_concurrency), ("counter", 2));
        assert_eq!(
            req.args[0].kind,
            Some(pb::task_arg::Kind::Value(b"7".to_vec()))
        );
    }
}
