//! Issue 14, race-free start-up: a worker handed its listener already bound (`--listen-fd`, the
//! way `xnai up` starts heads and the chaos harness starts every node) serves on exactly that
//! port, and once it is killed the port refuses connections (the parent kept no copy).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use xnai_proto::handover::{bind_for_child, pass_listener};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

#[test]
fn a_worker_serves_on_the_listener_it_is_handed() -> anyhow::Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let dir = c.data_dir.path();
    let addr_file = dir.join("handed-worker.addr");
    let log = std::fs::File::create(dir.join("handed-worker.log"))?;
    let arena = format!("/dev/shm/xnai-arena-test-fd-{}", std::process::id());
    let listener = bind_for_child()?;
    let addr = listener.local_addr()?;
    let mut cmd = Command::new(c.bin_dir().join("xnai-worker"));
    cmd.args(["--head", &c.head_env(), "--arena-bytes", "64MiB"])
        .args(["--arena-dir", &arena])
        .arg("--addr-file")
        .arg(&addr_file)
        .env("XNAI_TOKEN", &c.token)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    pass_listener(&mut cmd, &listener)?;
    let mut child = cmd.spawn().context("starting xnai-worker")?;
    drop(listener);
    let result = (|| -> anyhow::Result<()> {
        wait_until(
            Duration::from_secs(30),
            "handed-over worker registered",
            || Ok(addr_file.exists()),
        )?;
        let written = std::fs::read_to_string(&addr_file)?;
        anyhow::ensure!(written.trim() == addr.to_string(), "{written} != {addr}");
        wait_until(Duration::from_secs(30), "worker listed alive", || {
            let st = c.status()?;
            Ok(st["workers"].as_array().is_some_and(|ws| {
                ws.iter()
                    .any(|w| w["address"] == addr.to_string() && w["state"] == "alive")
            }))
        })?;
        std::net::TcpStream::connect(addr).context("connecting to the handed-over port")?;
        child.kill()?;
        child.wait()?;
        wait_until(
            Duration::from_secs(10),
            "killed worker's port closed",
            || Ok(std::net::TcpStream::connect(addr).is_err()),
        )?;
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&arena);
    result
}
