//! The compose deployment end to end: up.sh, hardening of every container (read-only root,
//! no capabilities, not root, arena on tmpfs), the issue-2 workload from the host CLI, a worker
//! and the leader head killed while tasks run, restarts, and down.sh leaving nothing behind.
//! The killed worker held a 64 MiB task output (rebuilt from lineage) and maybe the counter
//! actor (restarted elsewhere); the leader kill needs the SDK to follow the new leader.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xnai_tests::{init_tracing, sha256_hex};

use crate::deployment::{
    Deployment, PROJECT, container, containers, docker, docker_available, inspect, poll,
    service_of, wait_healthy,
};

const MIB64: usize = 64 * 1024 * 1024;

#[test]
fn t10_compose_up_workload_kills_down() -> Result<()> {
    init_tracing();
    if !docker_available() {
        tracing::warn!("no Docker engine answers `docker info`: compose deployment test skipped");
        return Ok(());
    }
    let t0 = Instant::now();

    tracing::info!("--- phase: deploy/up.sh (debug binaries of this build, scratch image)");
    let mut d = Deployment::up()?;
    let up_time = t0.elapsed();
    tracing::info!(?up_time, heads = ?d.heads, "deployment healthy");
    ensure!(d.token.len() >= 32, "a generated token: {:?}", d.token);
    let workers = ["worker1", "worker2", "worker3"];
    let heads: Vec<String> = (1..=d.heads.len()).map(|n| format!("head{n}")).collect();

    tracing::info!("--- phase: every container is hardened; worker arenas are on tmpfs");
    for s in heads.iter().map(String::as_str).chain(workers) {
        check_hardening(s, s.starts_with("worker"))?;
    }
    let st = d.status()?;
    let alive = alive_workers(&st);
    ensure!(alive.len() == 3, "three workers alive: {st}");
    for w in st["workers"].as_array().into_iter().flatten() {
        ensure!(
            w["arena_capacity"] == 240 * 1024 * 1024,
            "arena capacity follows the flags: {w}"
        );
    }

    tracing::info!("--- phase: workload from the host CLI: tasks, counter actor, 64 MiB object");
    assert_eq!(
        d.xnai_ok(&["run", "echo", "hello", "compose"])?,
        "hello compose"
    );
    d.xnai_ok(&[
        "actor",
        "create",
        "counter",
        "--name",
        "c",
        "--max-restarts",
        "-1",
    ])?;
    for want in ["1", "2", "3"] {
        assert_eq!(d.xnai_ok(&["actor", "call", "c", "incr"])?, want);
    }
    let files = tempfile::tempdir()?;
    let big = xnai_sdk::builtins::fill_bytes(MIB64, 3);
    let big_path = files.path().join("big.bin");
    std::fs::write(&big_path, &big)?;
    let put = d.xnai_ok(&["object", "put", path_str(&big_path)?])?;
    assert_eq!(
        d.xnai_ok(&["run", "digest", &format!("@{put}")])?,
        sha256_hex(&big)
    );
    let back = files.path().join("back.bin");
    d.xnai_ok(&["object", "get", &put, "-o", path_str(&back)?])?;
    ensure!(
        std::fs::read(&back)? == big,
        "the 64 MiB object reads back intact"
    );

    tracing::info!("--- phase: a chain across workers (digest pinned away from the fill)");
    let small = d.xnai_ok(&["task", "submit", "fill", "3000000", "11"])?;
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "the fill object ready",
        || Ok(object_info(&d, &small)?["state"] == "ready"),
    )?;
    let info = object_info(&d, &small)?;
    let home = service_of(info["locations"][0]["address"].as_str().unwrap_or_default())?;
    let away = workers
        .iter()
        .find(|w| **w != home)
        .context("another worker")?;
    let rt = tokio::runtime::Runtime::new()?;
    let remote = rt.block_on(submit_pinned(&d, "digest", &format!("@{small}"), away))?;
    assert_eq!(
        remote,
        sha256_hex(&xnai_sdk::builtins::fill_bytes(3_000_000, 11))
    );
    let info = object_info(&d, &small)?;
    let copies = info["locations"].as_array().map_or(0, Vec::len);
    ensure!(copies >= 2, "{away} pulled a copy from {home}: {info}");

    tracing::info!("--- phase: docker kill a worker while tasks run on it");
    // The victim holds the only copy of a 64 MiB task output: lineage must rebuild it.
    let lineage_obj = d.xnai_ok(&["task", "submit", "fill", &MIB64.to_string(), "21"])?;
    poll(
        Duration::from_secs(120),
        Duration::from_millis(200),
        "the 64 MiB fill ready",
        || Ok(object_info(&d, &lineage_obj)?["state"] == "ready"),
    )?;
    let info = object_info(&d, &lineage_obj)?;
    let victim_addr = info["locations"][0]["address"]
        .as_str()
        .context("the fill has a location")?
        .to_string();
    let victim = service_of(&victim_addr)?;
    let sleeps = spawn_sleeps(&d, 6, 4000)?;
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        &format!("tasks running on {victim}"),
        || {
            let st = d.status()?;
            Ok(st["workers"].as_array().into_iter().flatten().any(|w| {
                w["address"] == victim_addr.as_str() && w["running_tasks"].as_u64() > Some(0)
            }))
        },
    )?;
    let victim_id = container(&victim)?;
    docker(&["kill", &victim_id])?;
    tracing::info!(%victim, "killed");
    finish_sleeps(sleeps, "4000", Duration::from_secs(180))?;
    assert_eq!(d.xnai_ok(&["run", "echo", "after", "kill"])?, "after kill");
    let fresh = d.xnai_ok(&["task", "submit", "fill", &MIB64.to_string(), "22"])?;
    assert_eq!(
        d.xnai_ok(&["run", "digest", &format!("@{fresh}"), "--timeout", "180"])?,
        sha256_hex(&xnai_sdk::builtins::fill_bytes(MIB64, 22))
    );
    assert_eq!(
        d.xnai_ok(&[
            "run",
            "digest",
            &format!("@{lineage_obj}"),
            "--timeout",
            "180"
        ])?,
        sha256_hex(&xnai_sdk::builtins::fill_bytes(MIB64, 21)),
        "the lost 64 MiB object is rebuilt from lineage"
    );
    // Restarted elsewhere if it lived on the victim (a fresh counter then), else untouched.
    let n: u64 = d.xnai_ok(&["actor", "call", "c", "incr"])?.parse()?;
    ensure!(n == 1 || n == 4, "the counter answers after the kill: {n}");

    let mut killed = vec![victim.clone()];
    if d.heads.len() == 3 {
        tracing::info!("--- phase: docker kill the leader head while tasks run");
        let sleeps = spawn_sleeps(&d, 4, 3000)?;
        let old = leader(&d)?;
        poll(
            Duration::from_secs(60),
            Duration::from_millis(200),
            "tasks running",
            || {
                let st = d.status()?;
                Ok(st["workers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|w| w["running_tasks"].as_u64() > Some(0)))
            },
        )?;
        let head = service_of(&old)?;
        docker(&["kill", &container(&head)?])?;
        tracing::info!(%head, "killed the leader");
        finish_sleeps(sleeps, "3000", Duration::from_secs(180))?;
        poll(
            Duration::from_secs(60),
            Duration::from_millis(500),
            "a new leader",
            || Ok(leader(&d)? != old),
        )?;
        assert_eq!(d.xnai_ok(&["run", "echo", "new", "leader"])?, "new leader");
        let n2: u64 = d.xnai_ok(&["actor", "call", "c", "incr"])?.parse()?;
        ensure!(
            n2 == n + 1,
            "the counter keeps its state across a head failover: {n} then {n2}"
        );
        killed.push(head);
    } else {
        tracing::warn!(
            "one head (this xnai-head has no --peers): leader-kill phase skipped until Raft lands"
        );
    }

    tracing::info!("--- phase: docker start the killed containers; they come back healthy");
    for s in &killed {
        docker(&["start", &container(s)?])?;
    }
    for s in &killed {
        wait_healthy(s, Duration::from_secs(90))?;
    }
    poll(
        Duration::from_secs(60),
        Duration::from_millis(500),
        "the restarted worker registered",
        || Ok(alive_workers(&d.status()?).contains(&victim_addr)),
    )?;
    check_hardening(&victim, true)?;
    assert_eq!(d.xnai_ok(&["run", "echo", "back"])?, "back");

    tracing::info!("--- phase: deploy/down.sh --volumes leaves nothing behind");
    d.down()?;
    ensure!(
        containers(None)?.is_empty(),
        "no containers of {PROJECT} left"
    );
    let label = format!("label=com.docker.compose.project={PROJECT}");
    let nets = docker(&["network", "ls", "-q", "--filter", &label])?;
    ensure!(nets.is_empty(), "no networks of {PROJECT} left: {nets}");
    let vols = docker(&["volume", "ls", "-q", "--filter", &label])?;
    ensure!(vols.is_empty(), "no volumes of {PROJECT} left: {vols}");
    tracing::info!(?up_time, total = ?t0.elapsed(), "compose deployment test done");
    Ok(())
}

/// Inspect one container from the host: docker's view of its hardening, then the kernel's view
/// of its main process (/proc/PID/status and mountinfo): no shell exists inside to ask.
fn check_hardening(service: &str, worker: bool) -> Result<()> {
    let id = container(service)?;
    let fmt = "{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.CapDrop}}|{{.Config.User}}|{{json .HostConfig.SecurityOpt}}|{{.HostConfig.Memory}}|{{.HostConfig.RestartPolicy.Name}}|{{.State.Pid}}";
    let got = inspect(&id, fmt)?;
    let f: Vec<&str> = got.split('|').collect();
    ensure!(f.len() == 7, "{service}: unexpected inspect output {got}");
    ensure!(
        f[0] == "true",
        "{service}: read-only root filesystem ({got})"
    );
    ensure!(f[1].contains("\"ALL\""), "{service}: cap_drop ALL ({got})");
    ensure!(f[2] == "10001:10001", "{service}: runs as 10001 ({got})");
    ensure!(
        f[3].contains("no-new-privileges"),
        "{service}: no-new-privileges ({got})"
    );
    ensure!(f[4].parse::<u64>()? > 0, "{service}: memory limit ({got})");
    ensure!(
        f[5] == "unless-stopped",
        "{service}: restart policy ({got})"
    );
    let pid = f[6];

    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<Vec<&str>> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect())
            .with_context(|| format!("{service}: no {name} in /proc/{pid}/status"))
    };
    ensure!(
        field("Uid:")?.iter().all(|u| *u == "10001"),
        "{service}: not root: {:?}",
        field("Uid:")?
    );
    for cap in ["CapEff:", "CapPrm:", "CapBnd:"] {
        ensure!(
            field(cap)? == ["0000000000000000"],
            "{service}: no capabilities: {cap} {:?}",
            field(cap)?
        );
    }
    ensure!(field("NoNewPrivs:")? == ["1"], "{service}: NoNewPrivs");

    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let mount = |point: &str| -> Option<(String, String, String)> {
        mountinfo.lines().rev().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            (left.get(4) == Some(&point)).then(|| {
                (
                    left.get(5).unwrap_or(&"").to_string(),
                    right.first().unwrap_or(&"").to_string(),
                    right.get(2).unwrap_or(&"").to_string(),
                )
            })
        })
    };
    let (root_opts, _, _) = mount("/").with_context(|| format!("{service}: no / mount"))?;
    ensure!(
        root_opts.split(',').any(|o| o == "ro"),
        "{service}: / is mounted read-only ({root_opts})"
    );
    if worker {
        let (_, fstype, superopts) =
            mount("/arena").with_context(|| format!("{service}: no /arena mount"))?;
        ensure!(
            fstype == "tmpfs",
            "{service}: /arena is tmpfs, got {fstype}"
        );
        ensure!(
            superopts.contains("size=262144k") && superopts.contains("uid=10001"),
            "{service}: /arena has the size and owner set ({superopts})"
        );
    }
    tracing::info!(%service, pid, "hardened: ro root, no caps, uid 10001, no-new-privs");
    Ok(())
}

fn path_str(p: &std::path::Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 temp path")
}

fn object_info(d: &Deployment, id: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(
        &d.xnai_ok(&["object", "info", id, "--json"])?,
    )?)
}

/// Addresses of the workers `status` reports alive.
fn alive_workers(st: &serde_json::Value) -> Vec<String> {
    st["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["state"] == "alive")
        .filter_map(|w| w["address"].as_str().map(String::from))
        .collect()
}

/// The leader head's address.
fn leader(d: &Deployment) -> Result<String> {
    let st = d.status()?;
    st["heads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["role"] == "leader")
        .and_then(|h| h["address"].as_str().map(String::from))
        .with_context(|| format!("no leader in {st}"))
}

/// Task options that pin a task to the worker labelled `node=<service>`.
fn pinned(service: &str) -> xnai_sdk::TaskOptions {
    let mut resources = xnai_sdk::Resources {
        cpus: 1.0,
        ..Default::default()
    };
    resources.labels.insert("node".into(), service.into());
    xnai_sdk::TaskOptions {
        resources: Some(resources),
        ..Default::default()
    }
}

fn to_arg(a: &str) -> Result<xnai_sdk::Arg> {
    Ok(match a.strip_prefix('@') {
        Some(id) => xnai_sdk::Arg::Ref(xnai_sdk::ObjectRef::parse(id)?),
        None => xnai_sdk::Arg::from(a),
    })
}

/// Submit `function arg` on the worker `service` and return its result as text.
async fn submit_pinned(d: &Deployment, function: &str, arg: &str, service: &str) -> Result<String> {
    let client = d.client().await?;
    let r = client
        .submit(function, vec![to_arg(arg)?], pinned(service))
        .await?;
    let out = client.get(&r, Duration::from_secs(120)).await?;
    Ok(String::from_utf8(out.to_vec())?)
}

/// Start `n` `xnai run sleep MS` processes.
fn spawn_sleeps(d: &Deployment, n: usize, ms: u64) -> Result<Vec<Child>> {
    (0..n)
        .map(|_| d.xnai_spawn(&["run", "sleep", &ms.to_string(), "--timeout", "180"]))
        .collect()
}

/// Wait for every `xnai run sleep` to succeed with `want`, within `deadline`.
fn finish_sleeps(children: Vec<Child>, want: &str, deadline: Duration) -> Result<()> {
    let end = Instant::now() + deadline;
    for mut child in children {
        poll(
            end.saturating_duration_since(Instant::now()),
            Duration::from_millis(100),
            "a sleep task",
            || Ok(child.try_wait()?.is_some()),
        )
        .inspect_err(|_| {
            let _ = child.kill();
        })?;
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout.trim() != want {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            bail!(
                "xnai run sleep: {} {:?} {:?}",
                out.status,
                stdout.trim(),
                tail
            );
        }
    }
    Ok(())
}
