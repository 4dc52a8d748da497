//! Unit tests of the state machine: feed commands, check outcomes, effects and state.
//! No sockets and no clock: every id comes from small constants.

mod actors_objects;
mod fault;
mod retention;
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

/// Assign `task` to `worker` and finish it (size 10).
pub(super) fn run(s: &mut ControlState, task: TaskId, worker: WorkerId) {
    let (o, _) = s.apply(Command::AssignTask {
        task_id: task,
        worker_id: worker,
    });
    assert_eq!(o, Outcome::Applied, "assign {task}");
    let attempt = s.tasks[&task].attempts.len() as u32;
    let (o, _) = s.apply(Command::TaskFinished {
        task_id: task,
        worker_id: worker,
        attempt,
        size: 10,
        crc32: 1,
    });
    assert_eq!(o, Outcome::Applied, "finish {task}");
}

/// Declare `worker` dead; returns the effects.
pub(super) fn dead(s: &mut ControlState, worker: WorkerId) -> Vec<Effect> {
    s.apply(Command::DeclareWorkerDead {
        worker_id: worker,
        reason: "killed".into(),
    })
    .1
}
