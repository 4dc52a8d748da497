//! A follower whose snapshot install is interrupted after each step (an error from the install
//! hook stops its node, as a crash would) restarts from the same sled data directory, boots and
//! converges with the leader. Three heads over the in-process network, on sled, in real time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xnai_proto::auth::TokenInject;
use xnai_proto::ids::SessionId;

use super::storage::SledStorage;
use super::transport::sim::SimNetwork;
use super::{RaftConfig, RaftLog, StartOptions};
use crate::fault::{InstallStep, StepHook};
use crate::log::{CommandLog, Leadership, LogError};
use crate::state::Command;

const DEADLINE: Duration = Duration::from_secs(20);
const IDS: [u64; 3] = [1, 2, 3];

fn open_storage(dir: &Path, id: u64) -> SledStorage {
    let path = dir.join(id.to_string());
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        // A stopped node's last storage handles go with its tasks: retry until sled's lock is free.
        match sled::Config::new().path(&path).open() {
            Ok(db) => return SledStorage::open(db, &path.join("snaps")).expect("raft storage"),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "sled still locked");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen head {id}'s sled: {e}"),
        }
    }
}

async fn start(net: &SimNetwork, id: u64, storage: SledStorage) -> RaftLog {
    let cfg = RaftConfig {
        peers: IDS.iter().map(|&i| (i, format!("sim-{i}"))).collect(),
        snapshot_every: 5,
        tick: Duration::from_millis(10),
        election_tick: 10,
        heartbeat_tick: 2,
        ..RaftConfig::single(id)
    };
    let net = net.clone();
    RaftLog::start(
        &cfg,
        storage,
        format!("sim-{id}"),
        TokenInject::new("t").expect("token"),
        move |mailbox, _| net.attach(id, mailbox),
        StartOptions {
            fixed_election_tick: Some(if id == 1 { 10 } else { 200 }),
            ..Default::default()
        },
    )
    .await
    .expect("start head")
    .log
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn propose(leader: &RaftLog, from: u128, n: u128) {
    for k in from..from + n {
        leader
            .propose(vec![Command::OpenSession {
                request_id: format!("r-{k}"),
                session_id: SessionId((k + 1) << 8),
                lease_ms: 60_000,
            }])
            .await
            .expect("committed");
    }
}

async fn crash_during_install(crash: InstallStep) {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = SimNetwork::new(7);
    let mut heads: BTreeMap<u64, RaftLog> = BTreeMap::new();
    let fired = Arc::new(AtomicBool::new(false));
    // Armed once the group runs: bootstrapping installs a snapshot too.
    let armed = Arc::new(AtomicBool::new(false));
    for id in IDS {
        let storage = open_storage(dir.path(), id);
        let storage = if id == 3 {
            let (fired, armed) = (fired.clone(), armed.clone());
            let hook: StepHook = Arc::new(move |step| {
                if step == crash
                    && armed.load(Ordering::SeqCst)
                    && !fired.swap(true, Ordering::SeqCst)
                {
                    return Err(LogError::Failed(format!("injected crash after {step}")));
                }
                Ok(())
            });
            storage.with_install_hook(Some(hook))
        } else {
            storage
        };
        heads.insert(id, start(&net, id, storage).await);
    }
    wait_for("head 1 leads", || {
        heads[&1].leadership() == Leadership::Leader
    })
    .await;

    tracing::info!(%crash, "--- head 3 falls behind while the log is compacted");
    net.isolate(3, &IDS);
    armed.store(true, Ordering::SeqCst);
    propose(&heads[&1], 0, 30).await;

    tracing::info!(%crash, "--- heal: head 3 gets a snapshot and dies during the install");
    net.heal((Duration::ZERO, Duration::from_millis(2)));
    let three = heads.remove(&3).expect("head 3");
    wait_for("head 3 crashes during the install", || {
        fired.load(Ordering::SeqCst)
    })
    .await;
    // Its node task has ended on the hook's error; close only waits for it.
    three.close().await;
    net.detach(3);
    drop(three);

    tracing::info!(%crash, "--- restart head 3 from its data directory: it boots and converges");
    let three = start(&net, 3, open_storage(dir.path(), 3)).await;
    propose(&heads[&1], 30, 5).await;
    let leader_applied = *heads[&1].applied().borrow();
    wait_for("head 3 catches up", || {
        *three.applied().borrow() >= leader_applied
            && three.state().read(|s| s.clone()) == heads[&1].state().read(|s| s.clone())
    })
    .await;
    three.close().await;
    for h in heads.values() {
        h.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_crashes_during_an_install_boots_and_converges() {
    for crash in InstallStep::ALL {
        crash_during_install(crash).await;
    }
}
