//! SIGSTOP the leader (an isolated minority): the other two elect a leader and keep serving;
//! after SIGCONT the old leader steps down, and a write sent to it while it was paused does not
//! survive (the client sees a retriable error, and the group never applies it).

use std::time::Duration;

use anyhow::{Result, ensure};
use nix::sys::signal::Signal;
use xnai_proto::pb;
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use crate::common::{head_stub, peer_status, runtime};

#[test]
fn t20_paused_leader_steps_down_and_its_writes_do_not_survive() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 1,
        arena_bytes: "64MiB".into(),
    })?;
    c.xnai_ok(&["task", "submit", "echo", "before"])?;
    let old = c.leader()?;
    let rt = runtime()?;
    let old_term = rt.block_on(peer_status(&old.address, &c.token))?.term;
    let mut direct = rt.block_on(head_stub(&old.address, &c.token))?;

    tracing::info!(?old, "--- phase: pause the leader, send it a write");
    c.signal_head(&old, Signal::SIGSTOP)?;
    // SIGSTOP takes effect asynchronously: on a loaded machine a head thread may still run for
    // a moment and would commit the write with its healthy followers. Send only once every
    // thread of the head is stopped.
    wait_until(
        Duration::from_secs(10),
        "the leader's threads stopped",
        || all_threads_stopped(old.pid),
    )?;
    let orphan = rt.spawn(async move {
        let req = pb::SubmitTaskRequest {
            request_id: "t20-sent-to-the-paused-leader".into(),
            function: "echo".into(),
            args: vec![pb::Arg {
                kind: Some(pb::arg::Kind::Value(b"orphan".to_vec())),
            }],
            ..Default::default()
        };
        direct.submit_task(req).await
    });

    tracing::info!("--- phase: the other two elect a leader and keep serving");
    let others: Vec<_> = c
        .head_procs()?
        .into_iter()
        .filter(|h| h.id != old.id)
        .collect();
    wait_until(
        Duration::from_secs(10),
        "a new leader among the other two",
        || {
            let mut leaders = 0;
            for h in &others {
                if let Ok(s) = rt.block_on(peer_status(&h.address, &c.token))
                    && s.role == "leader"
                    && s.term > old_term
                {
                    leaders += 1;
                }
            }
            Ok(leaders == 1)
        },
    )?;
    for i in 0..5 {
        let out = c.xnai_ok(&["run", "echo", &format!("during-{i}")])?;
        ensure!(out == format!("during-{i}"), "{out}");
    }

    tracing::info!("--- phase: resume the old leader: it steps down, its write is gone");
    c.signal_head(&old, Signal::SIGCONT)?;
    let reply = rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), orphan).await });
    let reply = reply.map_err(|_| anyhow::anyhow!("the paused leader never answered"))??;
    match &reply {
        Ok(r) => anyhow::bail!("the paused leader acknowledged a write: {r:?}"),
        Err(s) => ensure!(s.code() == tonic::Code::Unavailable, "{s:?}"),
    }
    wait_until(Duration::from_secs(10), "the old leader follows", || {
        let s = rt.block_on(peer_status(&old.address, &c.token))?;
        Ok(s.role == "follower" && s.term > old_term)
    })?;
    let st = c.status()?;
    // "before" + 5 "during" tasks; the orphan was never applied.
    ensure!(st["tasks"].as_u64() == Some(6), "tasks: {}", st["tasks"]);
    let text = c.xnai_ok(&["status"])?;
    ensure!(text.matches("leader").count() == 1, "{text}");
    Ok(())
}

/// Whether every thread of `pid` is in the stopped state (`T` in /proc/PID/task/TID/stat).
fn all_threads_stopped(pid: u32) -> Result<bool> {
    let mut any = false;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(entry?.path().join("stat"))?;
        // The state follows the parenthesised command name, which may itself hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        if state != "T" {
            return Ok(false);
        }
        any = true;
    }
    Ok(any)
}
