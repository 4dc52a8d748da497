//! A snapshot install killed half-way (issue 14): head 4 joins a group that compacts its log
//! every 20 entries, so it catches up by snapshot, and the test hook (`XNAI_TEST_RAFT_FAULT`
//! with `4 snapshot-crash switched`) makes the process exit right after the raft metadata
//! switched to the new snapshot, before the old log is cleared and the state applied. Started
//! again on the same data directory and address, head 4 finishes the install, boots and catches
//! up with the group.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use xnai_tests::{Cluster, ClusterOptions, init_tracing, start_cluster_with_env, wait_until};

use crate::common::{peer_status, process_gone, runtime};

/// Start head 4 (`--join`) on `listen`, logging to `log`, with the fault hook reading `trigger`.
fn start_head4(c: &Cluster, listen: &str, log: &Path, trigger: &Path) -> Result<Child> {
    let dir = c.data_dir.path();
    let cluster_id = c.cluster_file()?["cluster_id"]
        .as_str()
        .context("cluster.json has no cluster_id")?
        .to_string();
    let _ = std::fs::remove_file(dir.join("head-4.addr"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(c.bin_dir().join("xnai-head"))
        .args(["--id", "4", "--listen", listen, "--join"])
        .args(["--cluster-id", &cluster_id])
        .arg("--data-dir")
        .arg(dir.join("head-4"))
        .arg("--addr-file")
        .arg(dir.join("head-4.addr"))
        .env("XNAI_TOKEN", &c.token)
        .env("XNAI_SNAPSHOT_EVERY", "20")
        .env("XNAI_TEST_RAFT_FAULT", trigger)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

#[test]
fn t80_a_head_killed_while_installing_a_snapshot_boots_and_catches_up() -> Result<()> {
    init_tracing();
    let c = start_cluster_with_env(
        ClusterOptions {
            heads: 3,
            workers: 1,
            arena_bytes: "64MiB".into(),
        },
        &[("XNAI_SNAPSHOT_EVERY", "20")],
    )?;
    let dir = c.data_dir.path();
    let trigger = dir.join("raft-fault");
    std::fs::write(&trigger, "4 snapshot-crash switched\n")?;
    let log = dir.join("head-4.log");

    tracing::info!("--- phase: enough writes for a few snapshots");
    for i in 0..30 {
        c.xnai_ok(&["task", "submit", "echo", &format!("w{i}")])?;
    }

    tracing::info!("--- phase: head 4 joins and dies after switching to the snapshot");
    let mut head4 = start_head4(&c, "127.0.0.1:0", &log, &trigger)?;
    let result = (|| -> Result<()> {
        let addr_file = dir.join("head-4.addr");
        wait_until(Duration::from_secs(20), "head 4 serving", || {
            Ok(addr_file.exists())
        })?;
        let addr4 = std::fs::read_to_string(&addr_file)?.trim().to_string();
        // The add commits on the group; head 4 may die before it answers anything else.
        let _ = c.xnai(&["head", "add", &addr4, "--json"])?;
        let pid = head4.id();
        wait_until(
            Duration::from_secs(30),
            "head 4 exits at the crash point",
            || Ok(head4.try_wait()?.is_some() || process_gone(pid)),
        )?;
        let text = std::fs::read_to_string(&log)?;
        ensure!(
            text.contains("crashing after snapshot install step switched"),
            "head 4 did not crash at the step: {}",
            text.lines().rev().take(10).collect::<Vec<_>>().join(" | ")
        );

        tracing::info!("--- phase: restart head 4 on the same data dir and address");
        std::fs::write(&trigger, "")?;
        let rt = runtime()?;
        head4 = start_head4(&c, &addr4, &log, &trigger)?;
        wait_until(Duration::from_secs(30), "head 4 caught up", || {
            let leader = c.leader()?;
            let l = rt.block_on(peer_status(&leader.address, &c.token))?;
            let Ok(s) = rt.block_on(peer_status(&addr4, &c.token)) else {
                return Ok(false);
            };
            Ok(s.role == "follower" && s.applied_index >= l.commit_index && s.commit_index > 0)
        })?;
        let text = std::fs::read_to_string(&log)?;
        ensure!(
            text.contains("finished installing a snapshot after a restart"),
            "head 4 did not finish the interrupted install on boot"
        );
        for i in 0..5 {
            c.xnai_ok(&["task", "submit", "echo", &format!("after{i}")])?;
        }
        wait_until(Duration::from_secs(20), "head 4 follows new writes", || {
            let leader = c.leader()?;
            let l = rt.block_on(peer_status(&leader.address, &c.token))?;
            let s = rt.block_on(peer_status(&addr4, &c.token))?;
            Ok(s.applied_index >= l.commit_index)
        })?;
        Ok(())
    })();
    let _ = head4.kill();
    let _ = head4.wait();
    result
}
