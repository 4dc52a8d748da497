//! Storage test suite for command logs: a restart recovers the same state, and snapshot +
//! trim + replay equals plain replay. Written against [`CommandLog`] and run against the
//! production Raft log (one head on sled) and the test-only `SledLog`.

use super::*;
use crate::raft::storage::MemoryStorage;
use crate::state::{CopyKind, FailureKind, Resources, TaskOptions, TaskSpec};
use xnai_proto::ids::{ObjectId, TaskId, WorkerId};

/// A deterministic workload touching workers, tasks, retries and objects.
fn workload(n: u64) -> Vec<Command> {
    let worker_id = WorkerId(1 << 8);
    let mut cmds = vec![Command::RegisterWorker {
        request_id: "w".into(),
        worker_id,
        address: "127.0.0.1:1".into(),
        pid: 7,
        resources: Resources::cpus(4),
        arena_capacity: 1 << 20,
        functions: vec!["echo".into()],
        classes: vec![],
    }];
    for i in 1..=n {
        let task_id = TaskId((i as u128) << 8);
        let spec = TaskSpec {
            function: "echo".into(),
            args: vec![],
            options: TaskOptions::default(),
        };
        cmds.push(Command::SubmitTask {
            request_id: format!("r{i}"),
            task_id,
            spec,
        });
        cmds.push(Command::AssignTask { task_id, worker_id });
        if i % 3 == 0 {
            let kind = FailureKind::System;
            cmds.push(Command::TaskFailed {
                task_id,
                worker_id,
                attempt: 1,
                kind,
                error: "x".into(),
            });
        } else {
            cmds.push(Command::TaskFinished {
                task_id,
                worker_id,
                attempt: 1,
                size: i,
                crc32: 1,
            });
        }
        let object_id = ObjectId(((i + 1_000_000) as u128) << 8);
        cmds.push(Command::AddObjectCopy {
            object_id,
            worker_id,
            size: i,
            crc32: 2,
            kind: CopyKind::Put,
        });
    }
    cmds
}

/// The state a plain in-memory replay of `cmds` gives.
fn replayed(cmds: &[Command]) -> ControlState {
    let mut s = ControlState::default();
    for c in cmds {
        s.apply(c.clone());
    }
    s
}

/// Propose `cmds` in groups of `chunk`, concurrently within a group, and check they applied.
async fn feed(log: &dyn CommandLog, cmds: &[Command], chunk: usize) {
    for group in cmds.chunks(chunk) {
        let futs = group.iter().map(|c| log.propose(vec![c.clone()]));
        for r in futures::future::join_all(futs).await {
            let outs = r.expect("proposal applied");
            assert_eq!(outs.len(), 1);
        }
    }
}

/// The suite, for any log opened by `open(dir, snapshot_every)` (ready to take proposals).
async fn storage_suite<L: CommandLog>(open: impl AsyncFn(&std::path::Path, u64) -> L) {
    // Restart recovers the same state, without snapshots.
    let dir = tempfile::tempdir().expect("tempdir");
    let cmds = workload(40);
    let log = open(dir.path(), 0).await;
    feed(&log, &cmds, 1).await;
    let before = log.state().read(|s| s.clone());
    assert_eq!(before, replayed(&cmds));
    // A Raft log's index also counts its own entries (bootstrap, each leader's first entry).
    let applied = *log.applied().borrow();
    assert!(applied >= cmds.len() as u64, "applied {applied}");
    log.close().await;
    let log = open(dir.path(), 0).await;
    assert_eq!(log.state().read(|s| s.clone()), before);
    assert!(*log.applied().borrow() >= applied);
    log.close().await;

    // Snapshot + trim + replay equals plain replay, across restarts and group commits.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 7).await;
    feed(&log, &cmds[..100], 9).await;
    log.close().await;
    let log = open(dir.path(), 7).await;
    feed(&log, &cmds[100..], 5).await;
    log.close().await;
    let log = open(dir.path(), 7).await;
    assert_eq!(log.state().read(|s| s.clone()), replayed(&cmds));
    // A retried write after restart returns the first outcome.
    let again = Command::SubmitTask {
        request_id: "r1".into(),
        task_id: TaskId(999 << 8),
        spec: TaskSpec {
            function: "echo".into(),
            args: vec![],
            options: TaskOptions::default(),
        },
    };
    let outs = log.propose(vec![again]).await.expect("applied");
    let first = TaskId(1 << 8);
    assert_eq!(
        outs,
        vec![Outcome::TaskSubmitted {
            task_id: first,
            object_id: first.return_object()
        }]
    );
    log.close().await;
    assert!(matches!(
        log.propose(workload(1)).await,
        Err(LogError::Closed)
    ));
}

/// A one-head Raft log on sled under `dir`, once it leads (so it has replayed its log).
async fn open_raft(dir: &std::path::Path, every: u64) -> crate::raft::RaftLog {
    let mut cfg = crate::raft::RaftConfig::single(1);
    cfg.snapshot_every = every;
    let token = xnai_proto::auth::TokenInject::new("t").expect("token");
    let supervisor = xnai_proto::supervise::Supervisor::new();
    let log = crate::raft::RaftLog::open(&cfg, dir, "127.0.0.1:1".into(), token, &supervisor)
        .await
        .expect("open raft log")
        .log;
    let mut status = log.status();
    let ready = status.wait_for(|s| s.leader_ready);
    tokio::time::timeout(std::time::Duration::from_secs(10), ready)
        .await
        .expect("one head leads within 10 s")
        .expect("node running");
    log
}

#[tokio::test]
async fn raft_log_passes_the_storage_suite() {
    storage_suite(open_raft).await;
}

/// Three heads on sled (`dir/1`, `dir/2`, `dir/3`) over the in-process network.
async fn open_three_on_sled(dir: &std::path::Path, every: u64) -> crate::raft::sim::GroupLog {
    crate::raft::sim::open_group(3, every, |id| {
        let db = sled::Config::new()
            .path(dir.join(id.to_string()))
            .open()
            .expect("open sled");
        let snaps = dir.join(format!("{id}-snapshots"));
        crate::raft::storage::SledStorage::open(db, &snaps).expect("raft storage")
    })
    .await
}

/// The in-memory storages of every group opened so far, by (directory, head): a reopen under
/// the same directory finds what the closed group wrote.
static MEMORY: std::sync::Mutex<Vec<(std::path::PathBuf, u64, MemoryStorage)>> =
    std::sync::Mutex::new(Vec::new());

/// Three heads in memory over the in-process network.
async fn open_three_in_memory(dir: &std::path::Path, every: u64) -> crate::raft::sim::GroupLog {
    crate::raft::sim::open_group(3, every, |id| {
        let mut all = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, s)) = all.iter().find(|(d, i, _)| d == dir && *i == id) {
            return s.clone();
        }
        let s = MemoryStorage::new();
        all.push((dir.to_path_buf(), id, s.clone()));
        s
    })
    .await
}

#[tokio::test]
async fn raft_group_of_three_on_sled_passes_the_storage_suite() {
    storage_suite(open_three_on_sled).await;
}

#[tokio::test(start_paused = true)]
async fn raft_group_of_three_in_memory_passes_the_storage_suite() {
    storage_suite(open_three_in_memory).await;
}

#[tokio::test]
async fn sled_log_passes_the_storage_suite() {
    storage_suite(async |dir: &std::path::Path, every| {
        SledLog::open(dir, every).expect("open sled log").0
    })
    .await;
}

#[tokio::test]
async fn sled_log_trims_entries_covered_by_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, mut effects) = SledLog::open(dir.path(), 10).expect("open");
    feed(&log, &workload(10), 1).await;
    let Some(super::Received::Batch(batch)) = effects.recv().await else {
        panic!("expected a batch")
    };
    assert_eq!(batch.index, 1);
    log.close().await;
    let db = sled::open(dir.path()).expect("reopen");
    let left = db.open_tree("log").expect("tree").len();
    assert!(left < 10, "log not trimmed: {left} entries");
    assert!(
        db.open_tree("meta")
            .expect("tree")
            .get(b"snapshot")
            .expect("get")
            .is_some()
    );
}
