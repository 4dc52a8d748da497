//! `xnai down` then `xnai up --heads 3` on the same data dir: actors, tasks and the object
//! directory are as before (every head recovers its state from its own sled).

use std::time::Duration;

use anyhow::{Result, ensure};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

#[test]
fn t30_three_heads_restart_with_the_same_state() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 2,
        arena_bytes: "64MiB".into(),
    })?;
    tracing::info!("--- phase: create state");
    let obj = c.xnai_ok(&["task", "submit", "echo", "persisted"])?;
    ensure!(c.xnai_ok(&["object", "get", &obj])? == "persisted");
    let actor = c.xnai_ok(&["actor", "create", "counter", "--name", "keeper"])?;
    let before = c.status()?;
    let heads_before = std::fs::read_to_string(c.data_dir.path().join("heads"))?;

    tracing::info!("--- phase: down, then up on the same data dir");
    let dir = c.data_dir.path().to_str().unwrap_or_default().to_string();
    c.xnai_ok(&["down", "--data-dir", &dir])?;
    let out = std::process::Command::new(c.bin_dir().join("xnai"))
        .args(["up", "--heads", "3", "--workers", "2", "--data-dir", &dir])
        .args(["--arena-bytes", "64MiB", "--detach"])
        .env_remove("XNAI_HEAD")
        .env_remove("XNAI_TOKEN")
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads_after = std::fs::read_to_string(c.data_dir.path().join("heads"))?;
    ensure!(
        heads_before == heads_after,
        "the heads came back on other ports"
    );

    tracing::info!("--- phase: the control state came back");
    wait_until(Duration::from_secs(30), "status after restart", || {
        Ok(c.xnai(&["status"])?.status.success())
    })?;
    let after = c.status()?;
    ensure!(
        after["heads"].as_array().map(Vec::len) == Some(3),
        "{after}"
    );
    // The restart adds only the new workers' registrations.
    ensure!(after["tasks"] == before["tasks"], "{before} vs {after}");
    ensure!(after["objects"] == before["objects"], "{before} vs {after}");
    let info: serde_json::Value =
        serde_json::from_str(&c.xnai_ok(&["object", "info", &obj, "--json"])?)?;
    ensure!(info["object_id"] == obj.as_str(), "{info}");
    let list = c.xnai_ok(&["actor", "list", "--json"])?;
    ensure!(list.contains(&actor) && list.contains("keeper"), "{list}");
    let term = after["heads"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["role"] == "leader"))
        .and_then(|h| h["term"].as_u64())
        .unwrap_or(0);
    let old_term = before["heads"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["role"] == "leader"))
        .and_then(|h| h["term"].as_u64())
        .unwrap_or(0);
    ensure!(
        term > old_term,
        "the restarted group kept its term history: {old_term} -> {term}"
    );
    Ok(())
}
