//! Unit tests of the state machine: feed commands, check outcomes, effects and state.
//! No sockets and no clock: every id comes from small constants.

mod actors_objects;
mod fault;
mod tasks;

use super::*;

pub(super) fn w(n: u128) -> WorkerId {
    WorkerId(n << 8)
}
pub(super) fn t(n: u128) -> TaskId {
    TaskId(n << 8)
}
pub(super) fn a(n: u128) -> ActorId {
    ActorId(n << 8)
}

pub(super) fn register(s: &mut ControlState, id: WorkerId, cpus: u64) {
    let (o, _) = s.apply(Command::RegisterWorker {
        request_id: format!("reg-{id}"),
        worker_id: id,
        address: format!("127.0.0.1:{}", 7000 + (id.0 >> 8)),
        pid: 1,
        resources: Resources::cpus(cpus),
        arena_capacity: 1 << 30,
        functions: vec!["echo".into(), "fill".into()],
        classes: vec!["counter".into()],
    });
    assert_eq!(o, Outcome::WorkerRegistered { worker_id: id });
}

pub(super) fn submit(
    s: &mut ControlState,
    rid: &str,
    id: TaskId,
    args: Vec<Arg>,
    opts: TaskOptions,
) -> Outcome {
    let spec = TaskSpec {
        function: "echo".into(),
        args,
        options: opts,
    };
    s.apply(Command::SubmitTask {
        request_id: rid.into(),
        task_id: id,
        spec,
    })
    .0
}
