//! Supervision: the leader's Raft node task dies (the test hook `XNAI_TEST_RAFT_FAULT` makes
//! it panic, or its next persist fail as on a full disk) while a client submits tasks in a
//! loop. The head must not linger as a zombie leader: its health turns NOT_SERVING (or it stops
//! answering), the process exits with the cause in its log, another head leads, and every
//! acknowledged submission survives.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use xnai_proto::serve::health::HEAD_SERVICE;
use xnai_sdk::{Arg, TaskOptions};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster_with_env, wait_until};

use crate::common::{process_gone, runtime, serving};

#[test]
fn t60_leader_raft_task_panics() -> Result<()> {
    kill_the_leaders_raft_task("panic", "panicked: raft node task killed by the test hook")
}

#[test]
fn t61_leader_disk_full_on_persist() -> Result<()> {
    kill_the_leaders_raft_task("disk-full", "no space left on device")
}

/// Write `text` to `path` atomically, so the heads never read half of it.
fn write_trigger(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn kill_the_leaders_raft_task(fault: &str, cause: &str) -> Result<()> {
    init_tracing();
    let hook = tempfile::tempdir()?;
    let trigger = hook.path().join("raft-fault");
    let trigger_env = trigger.to_string_lossy().to_string();
    let c = start_cluster_with_env(
        ClusterOptions {
            heads: 3,
            workers: 2,
            arena_bytes: "64MiB".into(),
        },
        &[("XNAI_TEST_RAFT_FAULT", &trigger_env)],
    )?;
    let rt = runtime()?;
    let heads = c.head_procs()?;
    tracing::info!("--- phase: every head reports SERVING");
    wait_until(Duration::from_secs(20), "three SERVING heads", || {
        let mut n = 0;
        for h in &heads {
            if rt
                .block_on(serving(&h.address, HEAD_SERVICE))
                .unwrap_or(false)
            {
                n += 1;
            }
        }
        Ok(n == heads.len())
    })?;
    let leader = c.leader()?;

    tracing::info!(?leader, "--- phase: submit in a loop");
    let client = Arc::new(rt.block_on(c.client())?);
    let acked: Arc<Mutex<Vec<(String, xnai_sdk::ObjectRef)>>> = Arc::default();
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (client, acked, failed, stop) =
            (client.clone(), acked.clone(), failed.clone(), stop.clone());
        rt.spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let arg = format!("t60-{i}");
                let args = vec![Arg::Value(Bytes::from(arg.clone()))];
                match client.submit("echo", args, TaskOptions::default()).await {
                    Ok(obj) => acked.lock().unwrap().push((arg, obj)),
                    Err(e) => failed.lock().unwrap().push(format!("{arg}: {e}")),
                }
            }
        })
    };
    wait_until(
        Duration::from_secs(30),
        "20 acknowledged submissions",
        || Ok(acked.lock().unwrap().len() >= 20),
    )?;

    tracing::info!(fault, "--- phase: kill the leader's raft task");
    write_trigger(&trigger, &format!("{} {fault}\n", leader.id))?;
    wait_until(
        Duration::from_secs(10),
        "the old leader NOT_SERVING or silent",
        || Ok(!rt.block_on(serving(&leader.address, "")).unwrap_or(false)),
    )?;
    wait_until(Duration::from_secs(15), "the old leader's exit", || {
        Ok(process_gone(leader.pid))
    })?;
    let log = c
        .data_dir
        .path()
        .join("logs")
        .join(format!("head-{}.log", leader.id));
    let text = std::fs::read_to_string(&log)?;
    ensure!(
        text.contains("essential task \"raft node\" died") && text.contains(cause),
        "the head's log does not name the cause {cause:?}: {}",
        text.lines().rev().take(10).collect::<Vec<_>>().join(" | ")
    );

    tracing::info!("--- phase: another head leads and serves");
    wait_until(Duration::from_secs(20), "a new leader", || {
        Ok(c.leader().is_ok_and(|l| l.id != leader.id))
    })?;
    let new_leader = c.leader()?;
    ensure!(rt.block_on(serving(&new_leader.address, HEAD_SERVICE))?);
    let n = acked.lock().unwrap().len();
    wait_until(Duration::from_secs(30), "20 more submissions", || {
        Ok(acked.lock().unwrap().len() >= n + 20)
    })?;
    stop.store(true, Ordering::SeqCst);
    rt.block_on(submitter)?;

    tracing::info!("--- phase: no acknowledged write was lost");
    let failed = failed.lock().unwrap().clone();
    ensure!(failed.is_empty(), "submissions failed: {failed:?}");
    let acked = acked.lock().unwrap().clone();
    for (arg, obj) in &acked {
        let got = rt.block_on(client.get(obj, Duration::from_secs(60)))?;
        ensure!(got == arg.as_bytes(), "{arg}: got {got:?}");
    }
    let st = c.status()?;
    ensure!(
        st["tasks"].as_u64() == Some(acked.len() as u64),
        "the cluster knows {} tasks, {} were acknowledged",
        st["tasks"],
        acked.len()
    );
    Ok(())
}
