//! Lineage: `fill` output on worker A, read once; kill A; `object get` returns the same bytes,
//! rebuilt elsewhere, and a `digest` of it matches. A task that needs an object whose only
//! holder was just killed (not yet declared dead) waits for the rebuild without spending its
//! retries. A `put` object on a killed worker cannot be rebuilt: `get` fails with ObjectLost and
//! says why.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use xnai_tests::{
    ClusterOptions, cluster_with_labelled_worker, init_tracing, sha256_hex, start_cluster,
};

use super::util::{locations, pid_of, pool_task, signal, worker};

#[test]
fn t30_lost_task_output_is_rebuilt_from_lineage() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: fill 5 MB, read it once");
    let c = start_cluster(ClusterOptions {
        workers: 2,
        ..Default::default()
    })?;
    let id = c.xnai_ok(&["task", "submit", "fill", "5000000", "7"])?;
    let want = xnai_sdk::builtins::fill_bytes(5_000_000, 7);
    let out = c.data_dir.path().join("first.bin");
    c.xnai_ok(&["object", "get", &id, "-o", out.to_str().unwrap_or_default()])?;
    assert_eq!(std::fs::read(&out)?, want);
    let before = locations(&c, &id)?;
    assert_eq!(before.len(), 1, "{before:?}");

    tracing::info!("--- phase: kill the worker holding it; get rebuilds it");
    let holder = worker(&c, &before[0])?;
    let killed = Instant::now();
    signal(pid_of(&holder)?, Signal::SIGKILL)?;
    let again = c.data_dir.path().join("again.bin");
    c.xnai_ok(&[
        "object",
        "get",
        &id,
        "-o",
        again.to_str().unwrap_or_default(),
    ])?;
    tracing::info!(elapsed = ?killed.elapsed(), "rebuilt object read after the kill");
    assert_eq!(std::fs::read(&again)?, want, "same bytes after the rebuild");
    let after = locations(&c, &id)?;
    assert!(!after.contains(&before[0]), "{after:?}");
    let digest = c.xnai_ok(&["run", "digest", &format!("@{id}")])?;
    assert_eq!(digest, sha256_hex(&want));
    Ok(())
}

#[test]
fn t32_task_on_a_dying_holders_object_waits_without_spending_retries() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    tracing::info!("--- phase: fill on worker A (pool=x), read once");
    let (mut c, a) = cluster_with_labelled_worker("pool=x")?;
    let client = rt.block_on(c.client())?;
    let fill = rt.block_on(client.submit(
        "fill",
        vec!["2000000".into(), "9".into()],
        pool_task("x", 0.1, 3),
    ))?;
    let want = xnai_sdk::builtins::fill_bytes(2_000_000, 9);
    let got = rt.block_on(client.get(&fill, Duration::from_secs(60)))?;
    assert_eq!(got.as_ref(), want.as_slice());
    let a_id = worker(&c, &a)?["worker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(locations(&c, &fill.id().to_string())?, vec![a_id]);

    tracing::info!("--- phase: B joins (pool=x, side=b); kill A; at once a digest on B");
    c.add_worker(&["--labels", "pool=x,side=b"])?;
    signal(pid_of(&worker(&c, &a)?)?, Signal::SIGKILL)?;
    // Placed on B while A is not yet declared dead, the digest's first attempts cannot pull
    // the argument. With max_retries 0 those must not count: it runs once the head has
    // declared A dead and rebuilt the fill on B.
    let mut on_b = pool_task("x", 0.1, 0);
    if let Some(r) = on_b.resources.as_mut() {
        r.labels.insert("side".into(), "b".into());
    }
    let digest = rt.block_on(async {
        let r = client
            .submit("digest", vec![xnai_sdk::Arg::Ref(fill)], on_b)
            .await?;
        client.get(&r, Duration::from_secs(60)).await
    })?;
    assert_eq!(String::from_utf8_lossy(&digest), sha256_hex(&want));
    Ok(())
}

#[test]
fn t31_lost_put_object_fails_with_its_cause() -> anyhow::Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        workers: 2,
        ..Default::default()
    })?;
    let file = c.data_dir.path().join("put.bin");
    std::fs::write(&file, vec![7u8; 100_000])?;
    let id = c.xnai_ok(&["object", "put", file.to_str().unwrap_or_default()])?;
    let holder = locations(&c, &id)?;
    assert_eq!(holder.len(), 1);
    tracing::info!("--- phase: kill the worker holding the put object");
    signal(pid_of(&worker(&c, &holder[0])?)?, Signal::SIGKILL)?;
    let sink = c.data_dir.path().join("lost.bin");
    let err = c.xnai_err(&[
        "object",
        "get",
        &id,
        "-o",
        sink.to_str().unwrap_or_default(),
    ])?;
    assert!(err.contains("lost"), "{err}");
    assert!(
        err.contains("was put on worker") && err.contains("cannot be rebuilt"),
        "{err}"
    );
    assert!(err.contains(&holder[0]), "names the worker: {err}");
    Ok(())
}
