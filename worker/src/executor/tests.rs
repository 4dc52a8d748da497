//! Executor unit tests with a fake peer (an in-memory map of objects) and a fake head that
//! records reports: dedup by task id, argument pulls with checks, outcomes and errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use xnai_proto::ids::{ObjectId, TaskId};

use super::*;
use crate::arena::{ArenaConfig, ObjectWriter};
use crate::head_link::ReportedCopy;

#[derive(Default)]
struct FakePeers {
    objects: HashMap<(String, ObjectId), Vec<u8>>,
    pulls: AtomicUsize,
}

impl ObjectPuller for FakePeers {
    fn pull<'a>(
        &'a self,
        address: &'a str,
        id: ObjectId,
        writer: &'a mut ObjectWriter,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.pulls.fetch_add(1, Ordering::SeqCst);
            let data = self
                .objects
                .get(&(address.to_string(), id))
                .ok_or(WorkerError::ObjectNotFound(id))?;
            for chunk in data.chunks(7) {
                writer.write(chunk)?;
            }
            Ok(())
        })
    }
}

#[derive(Default)]
struct FakeHead {
    reports: Mutex<Vec<(ObjectId, ReportedCopy)>>,
}

impl ObjectReporter for Arc<FakeHead> {
    fn object_added(
        &self,
        id: ObjectId,
        _meta: StoredMeta,
        kind: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>> {
        self.reports.lock().unwrap().push((id, kind));
        Box::pin(async { Ok(()) })
    }
}

struct Fixture {
    _root: tempfile::TempDir,
    arena: Arena,
    exec: Executor,
    peers: Arc<FakePeers>,
    head: Arc<FakeHead>,
}

fn fixture(capacity: u64, peers: FakePeers) -> Fixture {
    fixture_with(capacity, peers, None, TaskLimits::new(2.0, 16))
}

/// With a spill directory of `spill` bytes (if any) and these task limits.
fn fixture_with(
    capacity: u64,
    peers: FakePeers,
    spill: Option<u64>,
    limits: TaskLimits,
) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let (arena, _ev) = Arena::open(ArenaConfig {
        dir: Some(root.path().join("a")),
        capacity,
        spill: spill.map(|capacity| crate::arena::SpillConfig {
            dir: root.path().join("spill"),
            capacity,
        }),
    })
    .unwrap();
    let peers = Arc::new(peers);
    let head = Arc::new(FakeHead::default());
    let puller: Arc<dyn ObjectPuller> = Arc::clone(&peers) as Arc<dyn ObjectPuller>;
    let reporter: Arc<dyn ObjectReporter> = Arc::new(Arc::clone(&head));
    let exec = Executor::with_limits(
        arena.clone(),
        FunctionRegistry::with_builtins(capacity),
        puller,
        reporter,
        limits,
    );
    Fixture {
        _root: root,
        arena,
        exec,
        peers,
        head,
    }
}

fn spec(function: &str, args: Vec<TaskArgSpec>) -> TaskSpec {
    let task_id = TaskId::random();
    TaskSpec {
        task_id,
        object_id: task_id.return_object(),
        function: function.into(),
        args,
        cpus: None,
    }
}

fn inline(s: &str) -> TaskArgSpec {
    TaskArgSpec::Inline(Bytes::copy_from_slice(s.as_bytes()))
}

#[tokio::test]
async fn runs_and_stores_the_output_as_primary() {
    let f = fixture(1 << 20, FakePeers::default());
    let s = spec("echo", vec![inline("hello"), inline("world")]);
    let out = f.exec.execute(s.clone()).await.unwrap();
    let data = b"hello world";
    assert_eq!(
        out,
        TaskOutcome::Stored(StoredMeta {
            size: 11,
            crc32: crc32fast::hash(data)
        })
    );
    assert_eq!(&f.arena.get(&s.object_id).unwrap().bytes()[..], data);
    // A repeated call returns the stored result without running again.
    assert_eq!(f.exec.execute(s).await.unwrap(), out);
}

#[tokio::test]
async fn concurrent_calls_share_one_run() {
    let f = fixture(1 << 20, FakePeers::default());
    let s = spec("sleep", vec![inline("100")]);
    let (a, b) = tokio::join!(f.exec.execute(s.clone()), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(f.exec.running(), 1);
        f.exec.execute(s.clone()).await
    });
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(f.exec.running(), 0);
}

#[tokio::test]
async fn application_errors_are_outcomes_and_system_errors_are_not() {
    let f = fixture(1000, FakePeers::default());
    let out = f
        .exec
        .execute(spec("fill", vec![inline("abc"), inline("1")]))
        .await
        .unwrap();
    assert_eq!(
        out,
        TaskOutcome::Failed("fill: BYTES must be a non-negative integer, got \"abc\"".into())
    );
    let out = f
        .exec
        .execute(spec("fill", vec![inline("900"), inline("1")]))
        .await
        .unwrap();
    assert!(matches!(
        out,
        TaskOutcome::Stored(StoredMeta { size: 900, .. })
    ));
    let out = f
        .exec
        .execute(spec("fill", vec![inline("500"), inline("1")]))
        .await
        .unwrap();
    assert_eq!(
        out,
        TaskOutcome::Failed("arena full: need 500 B, free 100 B of 1000 B (900 B pinned)".into())
    );
    let e = f.exec.execute(spec("nope", vec![])).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown function \"nope\"; this worker offers: digest, echo, fill, sleep"
    );
}

#[tokio::test]
async fn pulls_missing_arguments_checks_them_and_reports() {
    let data = xnai_sdk::builtins::fill_bytes(100, 3);
    let id = ObjectId::random();
    let mut peers = FakePeers::default();
    peers.objects.insert(("good:1".into(), id), data.clone());
    let mut bad = data.clone();
    bad[5] ^= 1;
    peers.objects.insert(("corrupt:1".into(), id), bad);
    let f = fixture(1 << 20, peers);
    let arg = TaskArgSpec::Object(ObjectRefSpec {
        id,
        size: 100,
        crc32: crc32fast::hash(&data),
        locations: vec!["dead:1".into(), "corrupt:1".into(), "good:1".into()],
    });
    let out = f
        .exec
        .execute(spec("digest", vec![arg.clone()]))
        .await
        .unwrap();
    let TaskOutcome::Stored(meta) = out else {
        panic!("{out:?}")
    };
    assert_eq!(meta.size, 64);
    assert_eq!(f.arena.meta(&id).unwrap().size, 100, "pulled copy kept");
    tokio::task::yield_now().await;
    assert_eq!(
        f.head.reports.lock().unwrap().as_slice(),
        &[(id, ReportedCopy::Pulled)]
    );
    // Second use is local: no new pull.
    f.exec.execute(spec("digest", vec![arg])).await.unwrap();
    assert_eq!(f.peers.pulls.load(Ordering::SeqCst), 3);
    assert_eq!(f.arena.usage().reserved, 0);
}

#[tokio::test]
async fn unavailable_argument_is_its_own_outcome() {
    let f = fixture(1 << 20, FakePeers::default());
    let arg = TaskArgSpec::Object(ObjectRefSpec {
        id: ObjectId::random(),
        size: 1,
        crc32: 0,
        locations: vec!["x:1".into()],
    });
    let s = spec("digest", vec![arg]);
    let out = f.exec.execute(s.clone()).await.unwrap();
    let TaskOutcome::ArgumentUnavailable(e) = out else {
        panic!("expected ArgumentUnavailable, got {out:?}");
    };
    assert!(e.contains("x:1: no object"), "{e}");
    // Not cached: a retry runs again.
    let again = f.exec.execute(s).await.unwrap();
    assert!(
        matches!(again, TaskOutcome::ArgumentUnavailable(_)),
        "{again:?}"
    );
    assert_eq!(f.peers.pulls.load(Ordering::SeqCst), 2);
}

async fn sleeps(exec: &Executor, n: usize, cpus: Option<f64>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (exec, mut s) = (exec.clone(), spec("sleep", vec![inline("400")]));
            s.cpus = cpus;
            tokio::spawn(async move {
                let out = exec.execute(s).await.unwrap();
                assert!(matches!(out, TaskOutcome::Stored(_)), "{out:?}");
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_wait_for_their_share_of_cpus_and_of_zero_cpu_slots() {
    let f = fixture_with(1 << 20, FakePeers::default(), None, TaskLimits::new(1.0, 2));
    let start = tokio::time::Instant::now();
    tracing::info!("--- phase: two 1-CPU tasks on 1 CPU, three 0-CPU tasks on 2 slots");
    let mut runs = sleeps(&f.exec, 2, Some(1.0)).await;
    runs.extend(sleeps(&f.exec, 3, None).await);
    let deadline = start + Duration::from_millis(350);
    while !(f.exec.running() == 3 && f.exec.queued() == 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never 3 running, 2 queued"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tracing::info!("--- phase: the queued ones run after the first finish");
    for r in runs {
        r.await.unwrap();
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "ran in two rounds: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!((f.exec.running(), f.exec.queued()), (0, 0));
}

#[tokio::test]
async fn outputs_get_their_space_by_spilling_live_objects() {
    let f = fixture_with(
        1000,
        FakePeers::default(),
        Some(4000),
        TaskLimits::new(2.0, 4),
    );
    tracing::info!("--- phase: 4x the arena of live outputs, all stored");
    let mut outputs = Vec::new();
    for seed in 0..16 {
        let s = spec("fill", vec![inline("250"), inline(&seed.to_string())]);
        let id = s.object_id;
        assert!(matches!(
            f.exec.execute(s).await.unwrap(),
            TaskOutcome::Stored(_)
        ));
        outputs.push((id, seed));
    }
    assert!(f.arena.spill_usage().spills >= 12);
    tracing::info!("--- phase: every output reads back byte for byte");
    for (id, seed) in outputs {
        let h = f.arena.get_async(&id).await.unwrap();
        assert_eq!(
            h.bytes().as_ref(),
            &xnai_sdk::builtins::fill_bytes(250, seed)[..]
        );
    }
}
