//! Helpers for the fault tests: worker rows from `xnai status --json`, signals to worker
//! processes, and SDK task options.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use xnai_tests::Cluster;

/// Every worker row of `xnai status --json`.
pub fn workers(c: &Cluster) -> Result<Vec<Value>> {
    Ok(c.status()?["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The status row of the worker with this id or address.
pub fn worker(c: &Cluster, id_or_address: &str) -> Result<Value> {
    workers(c)?
        .into_iter()
        .find(|w| w["worker_id"] == id_or_address || w["address"] == id_or_address)
        .with_context(|| format!("no worker {id_or_address} in status"))
}

/// Send `sig` to the process `pid`.
pub fn signal(pid: u64, sig: Signal) -> Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    if pid <= 0 {
        bail!("no pid");
    }
    kill(Pid::from_raw(pid), sig).with_context(|| format!("kill -{sig} {pid}"))
}

/// kill -9 the worker at `address` and wait until its port refuses connections: a call made
/// while the process is still dying may reach a half-closed socket and is then ambiguous (it
/// fails with a retriable error under at-most-once), which is not what these tests are about.
pub fn kill9_and_wait_closed(c: &Cluster, address: &str) -> Result<()> {
    let row = worker(c, address)?;
    signal(pid_of(&row)?, Signal::SIGKILL)?;
    xnai_tests::wait_until(
        Duration::from_secs(10),
        "killed worker's port closed",
        || Ok(std::net::TcpStream::connect(address).is_err()),
    )
}

/// The pid of a worker row.
pub fn pid_of(row: &Value) -> Result<u64> {
    row["pid"].as_u64().context("worker row has no pid")
}

/// Worker ids holding object `id` (`xnai object info --json`).
pub fn locations(c: &Cluster, id: &str) -> Result<Vec<String>> {
    let info: Value = serde_json::from_str(&c.xnai_ok(&["object", "info", id, "--json"])?)?;
    Ok(info["locations"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["worker_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Task options that need `cpus` and the label `pool=NAME`, with `max_retries`.
pub fn pool_task(pool: &str, cpus: f64, max_retries: u32) -> xnai_sdk::TaskOptions {
    let mut resources = xnai_sdk::Resources {
        cpus,
        ..Default::default()
    };
    resources.labels.insert("pool".into(), pool.into());
    xnai_sdk::TaskOptions {
        resources: Some(resources),
        max_retries: Some(max_retries),
        ..Default::default()
    }
}

/// Set the heads' worker lease for clusters this test process starts (each test runs in its
/// own process under nextest).
pub fn set_worker_lease_ms(ms: u64) {
    // SAFETY: set before any thread of this test reads the environment; nextest runs every
    // test in its own process.
    unsafe { std::env::set_var("XNAI_WORKER_LEASE_MS", ms.to_string()) };
}
