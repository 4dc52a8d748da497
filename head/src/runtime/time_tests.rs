//! Runtime timing tests on paused tokio time (no real sleeps): a silent worker is declared dead
//! right after the lease and not before, a fresh runtime gives every worker a grace period, an
//! actor restart waits 50 ms doubling to 5 s, a task whose argument is unavailable is held
//! 200 ms doubling to 2 s, and a session with no keep-alive is closed after its lease.

use tokio::task::JoinHandle;
use xnai_proto::ids::{ActorId, SessionId, TaskId, WorkerId};

use super::effects::argument_delay;
use super::mem_log::MemLog;
use super::tests::register;
use super::*;
use crate::soft::Pressure;
use crate::state::{ActorOptions, ActorSpec, ActorState, ControlState, TaskOptions, TaskSpec};
use crate::state::{FailureKind, TaskState, WorkerState};
use crate::worker_link::fake::FakePool;

const A: WorkerId = WorkerId(1 << 8);
const B: WorkerId = WorkerId(2 << 8);

/// A log, a fake pool and heartbeats around a runtime that starts on demand.
struct Rig {
    log: Arc<dyn CommandLog>,
    pool: Arc<FakePool>,
    beats: Arc<Heartbeats>,
    batches: Option<EffectsReceiver>,
    runtime: Option<JoinHandle<()>>,
}

impl Rig {
    /// Workers A (port 1) and B (port 2) registered and just heard from; `down` ports fail
    /// every call, probes included.
    async fn new(down: &[&str]) -> Self {
        let (log, batches) = MemLog::new();
        let log: Arc<dyn CommandLog> = Arc::new(log);
        log.propose(vec![register(A, 1), register(B, 2)])
            .await
            .expect("registered");
        let beats = Arc::new(Heartbeats::default());
        beats.record(A, 0, 0, Pressure::Ok);
        beats.record(B, 0, 0, Pressure::Ok);
        Self {
            log,
            pool: Arc::new(FakePool::with_down(down)),
            beats,
            batches: Some(batches),
            runtime: None,
        }
    }

    /// Start the runtime now.
    fn start(&mut self) {
        let Some(batches) = self.batches.take() else {
            return;
        };
        let rt = Runtime::new(self.log.clone(), self.pool.clone(), self.beats.clone());
        self.runtime = Some(tokio::spawn(rt.run(batches)));
    }

    fn read<T>(&self, f: impl FnOnce(&ControlState) -> T) -> T {
        self.log.state().read(f)
    }

    fn alive(&self, w: WorkerId) -> bool {
        self.read(|s| s.workers[&w].state == WorkerState::Alive)
    }

    /// Wait (on the paused clock) until `done` holds, at most `within`.
    async fn until(&self, what: &str, within: Duration, done: impl Fn(&ControlState) -> bool) {
        let deadline = Instant::now() + within;
        let mut applied = self.log.applied();
        loop {
            applied.borrow_and_update();
            if self.read(&done) {
                return;
            }
            let waited = tokio::time::timeout_at(deadline, applied.changed()).await;
            assert!(
                matches!(waited, Ok(Ok(()))),
                "timed out waiting for {what}; calls {:?}; soft {:?}; state {:#?}",
                self.pool.calls(),
                self.beats.view(),
                self.read(|s| s.clone())
            );
        }
    }

    async fn propose(&self, command: Command) {
        self.log.propose(vec![command]).await.expect("proposed");
    }

    async fn stop(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.abort();
        }
        self.log.close().await;
    }
}

fn lease() -> Duration {
    xnai_proto::timings::Timings::default().lease()
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_silent_worker_is_declared_dead_right_after_the_lease_and_not_before() {
    tracing::info!("--- phase: A and B heard from; B stops answering");
    let mut rig = Rig::new(&["127.0.0.1:2"]).await;
    let t0 = Instant::now();
    rig.start();

    tracing::info!("--- phase: up to the end of the lease B is alive");
    tokio::time::sleep_until(t0 + lease() - MS).await;
    assert!(rig.alive(B), "B declared dead within its lease");

    tracing::info!("--- phase: B is declared dead at the first watch tick after the lease");
    rig.until("B dead", lease(), |s| {
        s.workers[&B].state == WorkerState::Dead
    })
    .await;
    let at = t0.elapsed();
    assert!(at > lease() && at <= lease() + SCHEDULE_TICK, "{at:?}");
    assert!(rig.alive(A), "A answers its probes: it stays alive");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_new_runtime_declares_no_worker_dead_within_its_grace_period() {
    tracing::info!("--- phase: A and B fall silent long before the runtime starts");
    let mut rig = Rig::new(&["127.0.0.1:1", "127.0.0.1:2"]).await;
    rig.beats.forget(&B);
    tokio::time::sleep(lease() * 10).await;
    let t1 = Instant::now();
    rig.start();

    tracing::info!("--- phase: for one lease after the start, nobody is declared dead");
    tokio::time::sleep_until(t1 + lease() - MS).await;
    assert!(
        rig.alive(A) && rig.alive(B),
        "declared dead in the grace period"
    );

    tracing::info!("--- phase: right after it, both are");
    rig.until("A and B dead", lease(), |s| {
        s.workers.values().all(|w| w.state == WorkerState::Dead)
    })
    .await;
    let at = t1.elapsed();
    assert!(at > lease() && at <= lease() + SCHEDULE_TICK, "{at:?}");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn actor_restarts_wait_50_ms_doubling_up_to_5_s() {
    let delays: Vec<u128> = (1..=9).map(|n| restart_delay(n).as_millis()).collect();
    assert_eq!(delays, vec![50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(restart_delay(0), Duration::ZERO);

    tracing::info!("--- phase: an actor with unlimited restarts starts on A");
    let mut rig = Rig::new(&[]).await;
    rig.start();
    let actor_id = ActorId(9 << 8);
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options: ActorOptions {
            max_restarts: -1,
            ..ActorOptions::default()
        },
    };
    rig.propose(Command::CreateActor {
        request_id: "a".into(),
        actor_id,
        spec,
    })
    .await;
    let alive = |s: &ControlState| s.actors[&actor_id].state == ActorState::Alive;
    rig.until("actor alive", lease(), alive).await;

    for n in 1..=8u32 {
        tracing::info!(
            n,
            "--- phase: the actor crashes; its restart waits its backoff"
        );
        let worker_id = rig.read(|s| s.actors[&actor_id].worker).expect("placed");
        rig.propose(Command::ActorDead {
            actor_id,
            worker_id,
            kind: FailureKind::System,
            error: "crashed".into(),
        })
        .await;
        let crashed = Instant::now();
        rig.until("actor alive again", Duration::from_secs(10), alive)
            .await;
        let started = rig.pool.times_of("start counter");
        assert_eq!(started.len(), n as usize + 1);
        let waited = started[n as usize] - crashed;
        let delay = restart_delay(n);
        assert!(
            waited >= delay && waited <= delay + SCHEDULE_TICK,
            "restart {n}: waited {waited:?}, backoff {delay:?}"
        );
    }
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_missing_its_argument_is_held_200_ms_doubling_up_to_2_s() {
    tracing::info!("--- phase: a task whose argument no holder serves");
    let mut rig = Rig::new(&[]).await;
    rig.start();
    let task_id = TaskId(7 << 8);
    let spec = TaskSpec {
        function: "missing".into(),
        args: vec![],
        options: TaskOptions {
            max_retries: 0,
            ..TaskOptions::default()
        },
    };
    rig.propose(Command::SubmitTask {
        request_id: "t".into(),
        task_id,
        spec,
    })
    .await;

    tracing::info!("--- phase: ten uncounted misses, each held longer, then it fails");
    rig.until("task failed", Duration::from_secs(60), |s| {
        s.tasks[&task_id].state == TaskState::Failed
    })
    .await;
    let calls = rig.pool.times_of("exec missing");
    assert_eq!(calls.len(), 11, "10 free misses, then one charged attempt");
    for (i, pair) in calls.windows(2).enumerate() {
        let hold = argument_delay(i as u32 + 1);
        let gap = pair[1] - pair[0];
        assert!(
            gap >= hold && gap <= hold + SCHEDULE_TICK,
            "miss {}: re-dispatched after {gap:?}, hold {hold:?}",
            i + 1
        );
    }
    let holds: Vec<u128> = (1..=6).map(|n| argument_delay(n).as_millis()).collect();
    assert_eq!(holds, vec![200, 400, 800, 1600, 2000, 2000]);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_session_without_keep_alives_closes_after_its_lease() {
    tracing::info!("--- phase: a session with a 1 s lease, renewed once");
    let mut rig = Rig::new(&[]).await;
    rig.start();
    let session_id = SessionId(3 << 8);
    let session_lease = Duration::from_secs(1);
    rig.propose(Command::OpenSession {
        request_id: "s".into(),
        session_id,
        lease_ms: session_lease.as_millis() as u64,
    })
    .await;
    rig.beats.renew_session(session_id);
    let t0 = Instant::now();

    tracing::info!("--- phase: open for its lease, closed right after");
    let open = move |s: &ControlState| s.sessions.contains_key(&session_id);
    tokio::time::sleep_until(t0 + session_lease - MS).await;
    assert!(rig.read(open), "closed within its lease");
    rig.until("session closed", session_lease, move |s| !open(s))
        .await;
    let at = t0.elapsed();
    assert!(
        at > session_lease && at <= session_lease + SCHEDULE_TICK,
        "{at:?}"
    );
    rig.stop().await;
}
