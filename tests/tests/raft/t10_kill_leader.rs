//! kill -9 the leader while a client submits tasks in a loop: a new leader serves within 2 s,
//! every acknowledged submission ran and its result can be read, and no retried submission
//! created a second task.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use nix::sys::signal::Signal;
use xnai_sdk::{Arg, TaskOptions};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use crate::common::runtime;

#[test]
fn t10_kill_leader_while_submitting() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 2,
        arena_bytes: "128MiB".into(),
    })?;
    let rt = runtime()?;
    let client = Arc::new(rt.block_on(c.client())?);
    let leader = c.leader()?;
    tracing::info!(?leader, "--- phase: submit in a loop, kill -9 the leader");

    // (arg, object, submitted at, acknowledged at)
    type Acked = Vec<(String, xnai_sdk::ObjectRef, Instant, Instant)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let submitter = {
        let (client, acked, failed, stop) =
            (client.clone(), acked.clone(), failed.clone(), stop.clone());
        rt.spawn(async move {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let arg = format!("t10-{i}");
                let args = vec![Arg::Value(Bytes::from(arg.clone()))];
                let started = Instant::now();
                match client.submit("echo", args, TaskOptions::default()).await {
                    Ok(obj) => acked
                        .lock()
                        .unwrap()
                        .push((arg, obj, started, Instant::now())),
                    Err(e) => failed.lock().unwrap().push(format!("{arg}: {e}")),
                }
            }
            i
        })
    };
    wait_until(
        Duration::from_secs(30),
        "20 submissions before the kill",
        || Ok(acked.lock().unwrap().len() >= 20),
    )?;
    let killed_at = Instant::now();
    c.signal_head(&leader, Signal::SIGKILL)?;
    // The next write: the first one submitted after the kill to be acknowledged.
    wait_until(
        Duration::from_secs(20),
        "a submission after the kill",
        || {
            Ok(acked
                .lock()
                .unwrap()
                .iter()
                .any(|(_, _, s, _)| *s > killed_at))
        },
    )?;
    let first_after = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, s, _)| *s > killed_at)
        .map(|(_, _, _, t)| *t)
        .min()
        .unwrap_or(killed_at);
    let gap = first_after - killed_at;
    tracing::info!(?gap, "first acknowledged write after the kill");
    // Keep submitting a little longer on the new leader, then stop.
    let n = acked.lock().unwrap().len();
    wait_until(Duration::from_secs(20), "20 more submissions", || {
        Ok(acked.lock().unwrap().len() >= n + 20)
    })?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let attempted = rt.block_on(submitter)?;
    ensure!(
        gap <= Duration::from_secs(2),
        "the new leader served after {gap:?} (limit 2 s)"
    );

    tracing::info!("--- phase: every acknowledged submission ran once");
    let failed = failed.lock().unwrap().clone();
    ensure!(failed.is_empty(), "submissions failed: {failed:?}");
    let acked = acked.lock().unwrap().clone();
    ensure!(
        acked.len() as u32 == attempted,
        "{} acked of {attempted}",
        acked.len()
    );
    let mut ids: Vec<_> = acked.iter().map(|(_, o, _, _)| o.id().hex()).collect();
    ids.sort();
    ids.dedup();
    ensure!(
        ids.len() == acked.len(),
        "two submissions got the same task"
    );
    for (arg, obj, _, _) in &acked {
        let got = rt.block_on(client.get(obj, Duration::from_secs(60)))?;
        ensure!(
            got == arg.as_bytes(),
            "{arg}: got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let st = c.status()?;
    ensure!(
        st["tasks"].as_u64() == Some(acked.len() as u64),
        "the head knows {} tasks, {} were acknowledged (a retry created a second task?)",
        st["tasks"],
        acked.len()
    );
    let new_leader = c.leader()?;
    ensure!(
        new_leader.id != leader.id,
        "the killed head is still leader"
    );
    Ok(())
}
