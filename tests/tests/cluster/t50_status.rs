//! `xnai status` shows heads and workers, and `xnai down` then `xnai up` on the same data
//! directory brings the same control state back (the head persists it with sled).

use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

#[test]
fn t50_status_and_restart_keeps_control_state() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: start cluster, check status");
    let c = start_cluster(ClusterOptions::default())?;
    let st = c.status()?;
    let heads = st["heads"].as_array().cloned().unwrap_or_default();
    assert_eq!(heads.len(), 1, "{st}");
    assert!(heads[0]["pid"].as_u64().unwrap_or(0) > 0, "{st}");
    let workers = st["workers"].as_array().cloned().unwrap_or_default();
    assert_eq!(workers.len(), 2, "{st}");
    for w in &workers {
        assert_eq!(w["state"], "alive", "{st}");
        assert!(
            w["arena_capacity"].as_u64().unwrap_or(0) >= 256 << 20,
            "{st}"
        );
        assert!(w["pid"].as_u64().unwrap_or(0) > 0, "{st}");
    }
    let human = c.xnai_ok(&["status"])?;
    assert!(
        human.contains("leader") || human.contains("single"),
        "{human}"
    );

    tracing::info!("--- phase: create state: a task result and an actor");
    let obj = c.xnai_ok(&["task", "submit", "echo", "persisted"])?;
    assert_eq!(c.xnai_ok(&["object", "get", &obj])?, "persisted");
    let actor = c.xnai_ok(&["actor", "create", "counter", "--name", "keeper"])?;

    tracing::info!("--- phase: down, then up on the same data dir");
    let dir = c.data_dir.path().to_str().unwrap().to_string();
    c.xnai_ok(&["down", "--data-dir", &dir])?;
    let out = std::process::Command::new(c.bin_dir().join("xnai"))
        .args([
            "up",
            "--heads",
            "1",
            "--workers",
            "2",
            "--data-dir",
            &dir,
            "--arena-bytes",
            "256MiB",
            "--detach",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read_to_string(c.data_dir.path().join("token"))?;
    assert_eq!(token.trim(), c.token, "up on the same dir reuses the token");

    tracing::info!("--- phase: the control state came back");
    wait_until(
        std::time::Duration::from_secs(30),
        "head answers after restart",
        || Ok(c.xnai(&["status"])?.status.success()),
    )?;
    let heads_now = std::fs::read_to_string(c.data_dir.path().join("heads"))?;
    let c2 = c
        .xnai_cmd()
        .env("XNAI_HEAD", heads_now.trim().replace('\n', ","))
        .args(["object", "info", &obj, "--json"])
        .output()?;
    assert!(
        c2.status.success(),
        "{}",
        String::from_utf8_lossy(&c2.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&c2.stdout)?;
    assert_eq!(info["object_id"], obj, "{info}");
    let list = c
        .xnai_cmd()
        .env("XNAI_HEAD", heads_now.trim().replace('\n', ","))
        .args(["actor", "list", "--json"])
        .output()?;
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&actor) && text.contains("keeper"), "{text}");
    Ok(())
}
