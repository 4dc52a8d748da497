//! Runtime tests with a fake worker pool and an in-memory log, on paused time:
//! tasks are placed, dispatched and recorded; system failures retry on another worker; actors
//! start and stop; recovery re-dispatches what was in flight, also after the effects channel
//! lagged.

use xnai_proto::ids::ObjectId;

use super::effects::recovery_effects;
use super::mem_log::MemLog;
use super::*;
use crate::soft::Pressure;
use crate::state::{ActorOptions, ActorSpec, ObjectState, Resources, TaskOptions, TaskSpec};
use crate::state::{ActorState, Arg, ControlState, TaskState};
use crate::worker_link::fake::FakePool;
use xnai_proto::ids::{ActorId, TaskId, WorkerId};

/// Registration of `worker_id` at `127.0.0.1:port`, offering `echo`, `bad` and `counter`.
pub(super) fn register(worker_id: WorkerId, port: u16) -> Command {
    Command::RegisterWorker {
        request_id: format!("w{port}"),
        worker_id,
        address: format!("127.0.0.1:{port}"),
        pid: 1,
        resources: Resources::cpus(1),
        arena_capacity: 1 << 20,
        functions: vec!["echo".into(), "bad".into(), "missing".into()],
        classes: vec!["counter".into()],
    }
}

/// Wait until `done` holds on the state, at most 5 s.
async fn wait_for(log: &dyn CommandLog, done: impl Fn(&ControlState) -> bool) {
    let mut applied = log.applied();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        applied.borrow_and_update();
        if log.state().read(&done) {
            return;
        }
        let waited = tokio::time::timeout_at(deadline, applied.changed()).await;
        assert!(
            waited.is_ok(),
            "timed out; state: {:#?}",
            log.state().read(|s| s.clone())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_run_retry_elsewhere_and_actors_start() {
    let (log, batches) = MemLog::new();
    let log: Arc<dyn CommandLog> = Arc::new(log);
    let pool = Arc::new(FakePool::with_down(&["127.0.0.1:1"]));
    let beats = Arc::new(Heartbeats::default());
    let (w1, w2) = (WorkerId(1 << 8), WorkerId(2 << 8));
    log.propose(vec![register(w1, 1), register(w2, 2)])
        .await
        .expect("registered");
    beats.record(w1, 0, 0, Pressure::Ok);
    beats.record(w2, 0, 0, Pressure::Ok);
    let runtime = tokio::spawn(Runtime::new(log.clone(), pool.clone(), beats).run(batches));

    let task_id = TaskId(7 << 8);
    let spec = TaskSpec {
        function: "echo".into(),
        args: vec![Arg::Inline(b"hi".to_vec())],
        options: TaskOptions::default(),
    };
    log.propose(vec![Command::SubmitTask {
        request_id: "t".into(),
        task_id,
        spec,
    }])
    .await
    .expect("submitted");
    let object: ObjectId = task_id.return_object();
    wait_for(&*log, |s| {
        s.objects
            .get(&object)
            .is_some_and(|o| o.state == ObjectState::Ready)
    })
    .await;
    let (attempts, location) = log.state().read(|s| {
        (
            s.tasks[&task_id].attempts.len(),
            s.objects[&object].locations.iter().next().copied(),
        )
    });
    // Worker 1 (lowest id) is tried first and is down; the retry lands on worker 2.
    assert_eq!(attempts, 2);
    assert_eq!(location, Some(w2));

    let bad = TaskId(8 << 8);
    let spec = TaskSpec {
        function: "bad".into(),
        args: vec![],
        options: TaskOptions::default(),
    };
    log.propose(vec![Command::SubmitTask {
        request_id: "b".into(),
        task_id: bad,
        spec,
    }])
    .await
    .expect("submitted");
    wait_for(&*log, |s| s.tasks[&bad].state == TaskState::Failed).await;
    let error = log
        .state()
        .read(|s| s.objects[&bad.return_object()].error.clone());
    assert_eq!(error.as_deref(), Some("bad: no"));

    // Worker 1 answers again, so the actor starts wherever it is placed.
    pool.set_down("127.0.0.1:1", false);
    let actor_id = ActorId(9 << 8);
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options: ActorOptions::default(),
    };
    log.propose(vec![Command::CreateActor {
        request_id: "a".into(),
        actor_id,
        spec,
    }])
    .await
    .expect("created");
    wait_for(&*log, |s| s.actors[&actor_id].state == ActorState::Alive).await;
    log.propose(vec![Command::KillActor {
        request_id: "k".into(),
        actor_id,
    }])
    .await
    .expect("killed");
    let stop = format!("stop {actor_id}");
    for _ in 0..100 {
        if pool.count(&stop) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.count(&stop), 1, "{:?}", pool.calls());
    runtime.abort();
    log.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_lagging_runtime_resynchronises_from_the_state() {
    // One batch fits; the runtime (same thread) does not run until this test awaits something
    // that waits, so the proposals below fill the channel and the assignment's batch is dropped.
    let (log, batches) = MemLog::with_bound(1);
    let log = Arc::new(log);
    let dyn_log: Arc<dyn CommandLog> = log.clone();
    let pool = Arc::new(FakePool::with_down(&[]));
    let beats = Arc::new(Heartbeats::default());
    let w = WorkerId(1 << 8);
    dyn_log
        .propose(vec![register(w, 1)])
        .await
        .expect("registered");
    beats.record(w, 0, 0, Pressure::Ok);
    let runtime = tokio::spawn(Runtime::new(dyn_log.clone(), pool.clone(), beats).run(batches));
    // Let it start (nothing to recover yet) and take the registration batch.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(log.dropped_batches(), 0);

    let task_id = TaskId(3 << 8);
    let spec = TaskSpec {
        function: "echo".into(),
        args: vec![Arg::Inline(b"lag".to_vec())],
        options: TaskOptions::default(),
    };
    let submit = Command::SubmitTask {
        request_id: "lag".into(),
        task_id,
        spec,
    };
    let assign = Command::AssignTask {
        task_id,
        worker_id: w,
    };
    // Without yielding: the submission fills the channel, the assignment (DispatchTask) drops.
    dyn_log.propose(vec![submit]).await.expect("submitted");
    dyn_log.propose(vec![assign]).await.expect("assigned");
    assert_eq!(log.dropped_batches(), 1, "the dispatch batch was dropped");
    assert_eq!(
        dyn_log.state().read(|s| s.tasks[&task_id].state),
        TaskState::Running
    );

    // The runtime sees the lag, re-dispatches the running task from the state, and it finishes.
    wait_for(&*dyn_log, |s| {
        s.objects
            .get(&task_id.return_object())
            .is_some_and(|o| o.state == ObjectState::Ready)
    })
    .await;
    assert_eq!(pool.count("exec echo"), 1, "{:?}", pool.calls());
    runtime.abort();
    dyn_log.close().await;
}

#[test]
fn recovery_redispatches_running_tasks_and_starting_actors() {
    let mut s = ControlState::default();
    let w = WorkerId(1 << 8);
    s.apply(register(w, 1));
    let task_id = TaskId(1 << 8);
    let spec = TaskSpec {
        function: "echo".into(),
        args: vec![],
        options: TaskOptions::default(),
    };
    s.apply(Command::SubmitTask {
        request_id: "t".into(),
        task_id,
        spec,
    });
    s.apply(Command::AssignTask {
        task_id,
        worker_id: w,
    });
    let actor_id = ActorId(2 << 8);
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options: ActorOptions::default(),
    };
    s.apply(Command::CreateActor {
        request_id: "a".into(),
        actor_id,
        spec,
    });
    s.apply(Command::PlaceActor {
        actor_id,
        worker_id: w,
    });
    assert_eq!(
        recovery_effects(&s),
        vec![
            Effect::DispatchTask {
                task_id,
                worker_id: w,
                attempt: 1
            },
            Effect::StartActor {
                actor_id,
                worker_id: w
            },
        ]
    );
}
