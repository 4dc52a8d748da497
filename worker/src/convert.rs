//! Protobuf <-> domain conversions for the worker service, in one place: id parsing (malformed
//! ids are INVALID_ARGUMENT), argument checks (inline size limit, names) and reply building.

use bytes::Bytes;
use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};
use xnai_proto::limits::{MAX_INLINE_ARGS_BYTES, MAX_NAME_BYTES};
use xnai_proto::pb;
use xnai_proto::units::format_size;

use crate::error::{Result, WorkerError};
use crate::executor::{ObjectRefSpec, TaskArgSpec, TaskOutcome, TaskSpec};

/// Bytes from a protobuf `bytes` field, whether prost generates `Vec<u8>` or `Bytes` for it
/// (no copy for either).
pub fn from_wire<T: Into<Bytes>>(v: T) -> Bytes {
    v.into()
}

/// A protobuf `bytes` field from bytes (`Vec<u8>` copies once; `Bytes` does not copy).
pub fn to_wire<T: From<Bytes>>(b: Bytes) -> T {
    T::from(b)
}

/// Parse an object id.
pub fn object_id(s: &str) -> Result<ObjectId> {
    Ok(ObjectId::parse(s)?)
}

/// Parse a worker id.
pub fn worker_id(s: &str) -> Result<WorkerId> {
    Ok(WorkerId::parse(s)?)
}

/// Parse an actor id.
pub fn actor_id(s: &str) -> Result<ActorId> {
    Ok(ActorId::parse(s)?)
}

/// Check a function, class or method name.
pub fn name(kind: &str, s: &str) -> Result<String> {
    if s.is_empty() {
        return Err(WorkerError::BadRequest(format!("{kind} name is empty")));
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(WorkerError::BadRequest(format!(
            "{kind} name is {} bytes, over the limit of {MAX_NAME_BYTES}",
            s.len()
        )));
    }
    Ok(s.to_string())
}

/// Refuse inline arguments over the limit.
pub fn check_inline(total: usize) -> Result<()> {
    if total > MAX_INLINE_ARGS_BYTES {
        return Err(WorkerError::BadRequest(format!(
            "inline arguments total {}, over the {} limit; put the data as an object and pass it by reference",
            format_size(total as u64),
            format_size(MAX_INLINE_ARGS_BYTES as u64)
        )));
    }
    Ok(())
}

/// Task (or constructor) arguments.
pub fn task_args(args: Vec<pb::TaskArg>) -> Result<Vec<TaskArgSpec>> {
    let mut inline = 0usize;
    let mut out = Vec::with_capacity(args.len());
    for (i, arg) in args.into_iter().enumerate() {
        match arg.kind {
            Some(pb::task_arg::Kind::Value(v)) => {
                inline += v.len();
                out.push(TaskArgSpec::Inline(from_wire(v)));
            }
            Some(pb::task_arg::Kind::Object(o)) => out.push(TaskArgSpec::Object(ObjectRefSpec {
                id: object_id(&o.object_id)?,
                size: o.size,
                crc32: o.crc32,
                locations: o
                    .locations
                    .into_iter()
                    .map(|l| l.address)
                    .filter(|a| !a.is_empty())
                    .collect(),
            })),
            None => {
                return Err(WorkerError::BadRequest(format!(
                    "argument {i} has neither an inline value nor an object reference"
                )));
            }
        }
    }
    check_inline(inline)?;
    Ok(out)
}

/// An ExecuteTask request.
pub fn task_spec(req: pb::ExecuteTaskRequest) -> Result<TaskSpec> {
    Ok(TaskSpec {
        task_id: TaskId::parse(&req.task_id)?,
        object_id: object_id(&req.object_id)?,
        function: name("function", &req.function)?,
        args: task_args(req.args)?,
        cpus: req.cpus,
    })
}

/// Actor call arguments (inline only).
pub fn call_args<T: Into<Bytes> + AsRef<[u8]>>(args: Vec<T>) -> Result<Vec<Bytes>> {
    check_inline(args.iter().map(|a| a.as_ref().len()).sum())?;
    Ok(args.into_iter().map(from_wire).collect())
}

/// The ExecuteTask reply for an outcome.
pub fn task_reply(outcome: TaskOutcome) -> pb::ExecuteTaskReply {
    use pb::execute_task_reply::Result as R;
    let result = match outcome {
        TaskOutcome::Stored(m) => R::Stored(pb::StoredObject {
            size: m.size,
            crc32: m.crc32,
        }),
        TaskOutcome::Failed(text) => R::Error(text),
        TaskOutcome::ArgumentUnavailable(text) => R::ArgumentUnavailable(text),
    };
    pb::ExecuteTaskReply {
        result: Some(result),
    }
}

/// The CallActor reply for a method result.
pub fn call_reply(result: Result<Bytes, String>) -> pb::CallActorReply {
    use pb::call_actor_reply::Result as R;
    let result = match result {
        Ok(v) => R::Value(to_wire(v)),
        Err(text) => R::Error(text),
    };
    pb::CallActorReply {
        result: Some(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_ids_and_big_inline_args() {
        let e = object_id("nope").unwrap_err();
        assert_eq!(tonic::Status::from(e).code(), tonic::Code::InvalidArgument);
        let big = pb::TaskArg {
            kind: Some(pb::task_arg::Kind::Value(vec![
                0;
                MAX_INLINE_ARGS_BYTES + 1
            ])),
        };
        let e = task_args(vec![big]).unwrap_err().to_string();
        assert!(
            e.ends_with("put the data as an object and pass it by reference"),
            "{e}"
        );
        assert!(task_args(vec![pb::TaskArg { kind: None }]).is_err());
        assert!(name("function", &"x".repeat(MAX_NAME_BYTES + 1)).is_err());
    }
}
