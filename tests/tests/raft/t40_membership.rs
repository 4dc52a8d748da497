//! Membership at runtime: a head started with `--join` and added with `xnai head add` catches
//! up by snapshot (the group compacts its log every 20 entries); `xnai head remove` takes it out
//! and it stops receiving traffic (its commit index stops while the group's moves on).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster_with_env, wait_until};

use crate::common::{peer_status, runtime};

#[test]
fn t40_add_a_head_that_catches_up_by_snapshot_then_remove_it() -> Result<()> {
    init_tracing();
    let c = start_cluster_with_env(
        ClusterOptions {
            heads: 3,
            workers: 1,
            arena_bytes: "64MiB".into(),
        },
        &[("XNAI_SNAPSHOT_EVERY", "20")],
    )?;
    tracing::info!("--- phase: enough writes for a few snapshots");
    for i in 0..30 {
        c.xnai_ok(&["task", "submit", "echo", &format!("w{i}")])?;
    }

    tracing::info!("--- phase: start head 4 with --join and add it");
    let dir = c.data_dir.path();
    let cluster_id = c.cluster_file()?["cluster_id"]
        .as_str()
        .context("cluster.json has no cluster_id")?
        .to_string();
    let addr_file = dir.join("head-4.addr");
    let log = std::fs::File::create(dir.join("head-4.log"))?;
    let mut head4 = Command::new(c.bin_dir().join("xnai-head"))
        .args([
            "--id",
            "4",
            "--listen",
            "127.0.0.1:0",
            "--join",
            "--cluster-id",
            &cluster_id,
        ])
        .arg("--data-dir")
        .arg(dir.join("head-4"))
        .arg("--addr-file")
        .arg(&addr_file)
        .env("XNAI_TOKEN", &c.token)
        .env("XNAI_SNAPSHOT_EVERY", "20")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let result = (|| -> Result<()> {
        wait_until(Duration::from_secs(20), "head 4 serving", || {
            Ok(addr_file.exists())
        })?;
        let addr4 = std::fs::read_to_string(&addr_file)?.trim().to_string();
        let added = c.xnai_ok(&["head", "add", &addr4, "--json"])?;
        let added: serde_json::Value = serde_json::from_str(&added)?;
        ensure!(added["id"] == 4, "{added}");

        let rt = runtime()?;
        wait_until(Duration::from_secs(20), "head 4 caught up", || {
            let leader = c.leader()?;
            let l = rt.block_on(peer_status(&leader.address, &c.token))?;
            let s = rt.block_on(peer_status(&addr4, &c.token))?;
            Ok(s.role == "follower" && s.applied_index >= l.commit_index && s.commit_index > 0)
        })?;
        let log4 = std::fs::read_to_string(dir.join("head-4.log"))?;
        ensure!(
            log4.contains("installed a snapshot"),
            "head 4 did not catch up by snapshot:\n{log4}"
        );
        let listed = c.xnai_ok(&["head", "list"])?;
        ensure!(listed.lines().count() == 5, "{listed}");

        tracing::info!("--- phase: remove head 4; it stops receiving traffic");
        c.xnai_ok(&["head", "remove", "4"])?;
        let listed = c.xnai_ok(&["head", "list", "--json"])?;
        let heads: serde_json::Value = serde_json::from_str(&listed)?;
        ensure!(heads.as_array().map(Vec::len) == Some(3), "{heads}");
        // Give the removal's own entry time to reach (or not) head 4, then freeze its view.
        let leader = c.leader()?;
        let at_removal = rt
            .block_on(peer_status(&leader.address, &c.token))?
            .commit_index;
        wait_until(Duration::from_secs(10), "head 4 settles", || {
            let a = rt.block_on(peer_status(&addr4, &c.token))?.commit_index;
            std::thread::sleep(Duration::from_millis(300));
            let b = rt.block_on(peer_status(&addr4, &c.token))?.commit_index;
            Ok(a == b)
        })?;
        let frozen = rt.block_on(peer_status(&addr4, &c.token))?.commit_index;
        for i in 0..10 {
            c.xnai_ok(&["task", "submit", "echo", &format!("after{i}")])?;
        }
        let group = rt
            .block_on(peer_status(&leader.address, &c.token))?
            .commit_index;
        ensure!(
            group >= at_removal + 10,
            "the group did not commit: {at_removal} -> {group}"
        );
        let now = rt.block_on(peer_status(&addr4, &c.token))?.commit_index;
        ensure!(
            now == frozen,
            "removed head 4 still receives entries: {frozen} -> {now}"
        );
        Ok(())
    })();
    let _ = head4.kill();
    let _ = head4.wait();
    result
}
