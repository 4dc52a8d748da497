//! kill -9 a worker running 20 `sleep 2000` tasks: the head declares it dead within about two
//! seconds and all 20 tasks are retried on another worker; every result arrives.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use super::util::{pid_of, pool_task, signal, worker};

#[test]
fn t10_kill_worker_running_20_tasks_all_results_arrive() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    tracing::info!("--- phase: cluster with worker A (pool=x) running 20 sleep tasks");
    let mut c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let a = c.add_worker(&["--labels", "pool=x", "--cpus", "4"])?;
    let client = rt.block_on(c.client())?;
    let refs = rt.block_on(async {
        let mut refs = Vec::new();
        for _ in 0..20 {
            let r = client
                .submit("sleep", vec!["2000".into()], pool_task("x", 0.1, 3))
                .await?;
            refs.push(r);
        }
        anyhow::Ok(refs)
    })?;
    wait_until(Duration::from_secs(30), "20 tasks running on A", || {
        Ok(worker(&c, &a)?["running_tasks"].as_u64() == Some(20))
    })?;

    tracing::info!("--- phase: worker B joins the pool; kill -9 A");
    c.add_worker(&["--labels", "pool=x", "--cpus", "4"])?;
    let a_row = worker(&c, &a)?;
    let killed = Instant::now();
    signal(pid_of(&a_row)?, Signal::SIGKILL)?;
    wait_until(Duration::from_secs(10), "A declared dead", || {
        Ok(worker(&c, &a)?["state"] == "dead")
    })?;
    let declared = killed.elapsed();
    tracing::info!(?declared, "A declared dead");
    assert!(
        declared < Duration::from_secs(5),
        "declared after {declared:?}"
    );

    tracing::info!("--- phase: all 20 results arrive");
    let got = rt.block_on(async {
        let mut out = Vec::new();
        for r in &refs {
            out.push(client.get(r, Duration::from_secs(60)).await?);
        }
        anyhow::Ok(out)
    })?;
    tracing::info!(elapsed = ?killed.elapsed(), "all results after the kill");
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|b| b.as_ref() == b"2000"), "{got:?}");
    Ok(())
}

#[test]
fn t11_application_errors_retry_only_when_asked() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    let c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let client = rt.block_on(c.client())?;
    tracing::info!("--- phase: a bad fill fails once without retry_exceptions, thrice with");
    let (plain, retried) = rt.block_on(async {
        let plain = client
            .submit("fill", vec!["abc".into(), "1".into()], Default::default())
            .await?;
        let opts = xnai_sdk::TaskOptions {
            max_retries: Some(2),
            retry_exceptions: true,
            ..Default::default()
        };
        let retried = client
            .submit("fill", vec!["abc".into(), "1".into()], opts)
            .await?;
        let p = client.get(&plain, Duration::from_secs(30)).await;
        let r = client.get(&retried, Duration::from_secs(30)).await;
        anyhow::Ok((p, r))
    })?;
    let (Err(p), Err(r)) = (plain, retried) else {
        anyhow::bail!("bad fill succeeded");
    };
    assert!(p.to_string().contains("BYTES must be"), "{p}");
    assert!(r.to_string().contains("BYTES must be"), "{r}");
    Ok(())
}
