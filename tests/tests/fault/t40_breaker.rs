//! Circuit breaker: SIGSTOP a worker (with a long lease, so it is not declared dead): its
//! breaker opens after the failure threshold and no new work goes there; SIGCONT: a half-open
//! probe closes it and placements resume. A worker under memory pressure is "degraded".

use std::time::Duration;

use nix::sys::signal::Signal;
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use super::util::{locations, pid_of, set_worker_lease_ms, signal, worker, workers};

#[test]
fn t40_sigstop_opens_breaker_sigcont_closes_it() -> anyhow::Result<()> {
    init_tracing();
    set_worker_lease_ms(120_000);
    let rt = tokio::runtime::Runtime::new()?;
    let c = start_cluster(ClusterOptions {
        workers: 2,
        ..Default::default()
    })?;
    let rows = workers(&c)?;
    let a = rows[0]["worker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let b = rows[1]["worker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let a_pid = pid_of(&rows[0])?;

    tracing::info!("--- phase: SIGSTOP A; its breaker opens");
    signal(a_pid, Signal::SIGSTOP)?;
    let opened = wait_until(Duration::from_secs(30), "A's breaker open", || {
        Ok(worker(&c, &a)?["breaker"] == "open")
    });
    if let Err(e) = opened {
        let _ = signal(a_pid, Signal::SIGCONT);
        return Err(e);
    }
    assert_eq!(worker(&c, &a)?["state"], "degraded");

    tracing::info!("--- phase: no new work goes to A");
    let client = rt.block_on(c.client())?;
    let refs = rt.block_on(async {
        let mut refs = Vec::new();
        for i in 0..6 {
            refs.push(
                client
                    .submit(
                        "echo",
                        vec![format!("{i}").as_str().into()],
                        Default::default(),
                    )
                    .await?,
            );
        }
        for r in &refs {
            client.get(r, Duration::from_secs(30)).await?;
        }
        anyhow::Ok(refs)
    });
    let refs = match refs {
        Ok(r) => r,
        Err(e) => {
            let _ = signal(a_pid, Signal::SIGCONT);
            return Err(e);
        }
    };
    for r in &refs {
        assert_eq!(locations(&c, &r.id().hex())?, vec![b.clone()]);
    }

    tracing::info!("--- phase: SIGCONT A; a half-open probe closes the breaker");
    signal(a_pid, Signal::SIGCONT)?;
    wait_until(Duration::from_secs(90), "A's breaker closed", || {
        Ok(worker(&c, &a)?["breaker"] == "closed")
    })?;
    assert_eq!(worker(&c, &a)?["state"], "alive");

    tracing::info!("--- phase: placements on A resume");
    let on_a = rt.block_on(async {
        let mut refs = Vec::new();
        for _ in 0..4 {
            refs.push(
                client
                    .submit("sleep", vec!["300".into()], Default::default())
                    .await?,
            );
        }
        for r in &refs {
            client.get(r, Duration::from_secs(30)).await?;
        }
        anyhow::Ok(refs)
    })?;
    let mut anywhere_a = false;
    for r in &on_a {
        anywhere_a |= locations(&c, &r.id().hex())?.contains(&a);
    }
    assert!(anywhere_a, "no task ran on A after its breaker closed");
    Ok(())
}

#[test]
fn t41_memory_pressure_makes_a_worker_degraded() -> anyhow::Result<()> {
    init_tracing();
    let mut c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let hot = c.add_worker(&["--pressure-warn", "0.0", "--labels", "pool=hot"])?;
    wait_until(Duration::from_secs(10), "the hot worker degraded", || {
        let w = worker(&c, &hot)?;
        Ok(w["state"] == "degraded" && w["pressure"] != "ok")
    })?;
    let id = c.xnai_ok(&["task", "submit", "echo", "x"])?;
    let out = c.data_dir.path().join("echo.bin");
    c.xnai_ok(&["object", "get", &id, "-o", out.to_str().unwrap_or_default()])?;
    let w = worker(&c, &hot)?;
    let hot_id = w["worker_id"].as_str().unwrap_or_default().to_string();
    assert!(
        !locations(&c, &id)?.contains(&hot_id),
        "placed on a degraded worker"
    );
    Ok(())
}

#[test]
fn t42_leader_failover_keeps_an_open_breaker_open() -> anyhow::Result<()> {
    init_tracing();
    set_worker_lease_ms(120_000);
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 2,
        ..Default::default()
    })?;
    let rows = workers(&c)?;
    let a = rows[0]["worker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let a_pid = pid_of(&rows[0])?;
    tracing::info!("--- phase: SIGSTOP A; its breaker opens on the leader");
    signal(a_pid, Signal::SIGSTOP)?;
    let run = || -> anyhow::Result<()> {
        wait_until(Duration::from_secs(30), "A's breaker open", || {
            Ok(worker(&c, &a)?["breaker"] == "open")
        })?;
        tracing::info!("--- phase: kill the leader; the new leader keeps A cut off");
        let st = c.status()?;
        let leader = st["heads"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["role"] == "leader").cloned())
            .ok_or_else(|| anyhow::anyhow!("no leader in {st}"))?;
        let old_pid = leader["pid"].as_u64().unwrap_or_default();
        signal(old_pid, Signal::SIGKILL)?;
        wait_until(Duration::from_secs(20), "a new leader", || {
            let st = c.status()?;
            Ok(st["heads"].as_array().is_some_and(|hs| {
                hs.iter()
                    .any(|h| h["role"] == "leader" && h["pid"].as_u64() != Some(old_pid))
            }))
        })?;
        // For a few seconds (past the first half-open probe) it is never closed.
        let until = std::time::Instant::now() + Duration::from_secs(4);
        while std::time::Instant::now() < until {
            if let Ok(w) = worker(&c, &a) {
                assert_ne!(
                    w["breaker"], "closed",
                    "the new leader closed A's breaker: {w}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::info!("--- phase: SIGCONT A; the new leader's probe closes it");
        signal(a_pid, Signal::SIGCONT)?;
        wait_until(Duration::from_secs(90), "A's breaker closed", || {
            Ok(worker(&c, &a)?["breaker"] == "closed")
        })
    };
    let res = run();
    let _ = signal(a_pid, Signal::SIGCONT);
    res
}
