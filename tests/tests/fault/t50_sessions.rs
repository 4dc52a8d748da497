//! Freeing: a client submits 1,000 tasks and exits without releasing; once its session lease
//! runs out, the head frees the outputs and the arenas return to empty. Released refs of a
//! live client are freed too (batched).

use std::time::{Duration, Instant};

use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use super::util::workers;

fn arena_used(c: &xnai_tests::Cluster) -> anyhow::Result<u64> {
    Ok(workers(c)?
        .iter()
        .filter(|w| w["state"] != "dead")
        .filter_map(|w| w["arena_used"].as_u64())
        .sum())
}

#[test]
fn t50_exited_client_objects_are_freed_after_its_lease() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    let c = start_cluster(ClusterOptions {
        workers: 2,
        ..Default::default()
    })?;
    tracing::info!("--- phase: a client submits 1,000 tasks and exits without releasing");
    rt.block_on(async {
        let config = xnai_sdk::ClientConfig {
            session_lease: Some(Duration::from_secs(2)),
            ..xnai_sdk::ClientConfig::new(c.heads.clone(), c.token.clone())
        };
        let client = xnai_sdk::Client::connect(config).await?;
        let mut refs = Vec::new();
        for i in 0..1000 {
            let opts = xnai_sdk::TaskOptions {
                resources: Some(xnai_sdk::Resources {
                    cpus: 0.01,
                    ..Default::default()
                }),
                ..Default::default()
            };
            refs.push(
                client
                    .submit(
                        "fill",
                        vec!["4096".into(), format!("{i}").as_str().into()],
                        opts,
                    )
                    .await?,
            );
        }
        let done = client
            .wait(&refs, refs.len(), Duration::from_secs(120))
            .await?;
        assert_eq!(done.done.len(), 1000, "every task finished");
        anyhow::Ok(())
    })?;
    wait_until(Duration::from_secs(10), "outputs in the arenas", || {
        Ok(arena_used(&c)? >= 1000 * 4096)
    })?;
    let exited = Instant::now();

    tracing::info!("--- phase: the lease runs out; the arenas return to empty");
    wait_until(Duration::from_secs(60), "arenas empty", || {
        Ok(arena_used(&c)? == 0)
    })?;
    tracing::info!(elapsed = ?exited.elapsed(), "arenas empty after the client exited");
    Ok(())
}

#[test]
fn t51_released_refs_and_cli_free() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    let c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    tracing::info!("--- phase: a live client releases its refs");
    rt.block_on(async {
        let client = c.client().await?;
        let r = client
            .submit(
                "fill",
                vec!["100000".into(), "1".into()],
                Default::default(),
            )
            .await?;
        client.get(&r, Duration::from_secs(30)).await?;
        client.release(&[r]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = client.object_info(&r).await?;
            if info.state == xnai_sdk::ObjectState::Freed {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "not freed: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    })?;
    tracing::info!("--- phase: CLI objects live until `xnai object free`");
    let id = c.xnai_ok(&["task", "submit", "fill", "100000", "2"])?;
    let out = c.data_dir.path().join("fill.bin");
    c.xnai_ok(&["object", "get", &id, "-o", out.to_str().unwrap_or_default()])?;
    c.xnai_ok(&["object", "free", &id])?;
    let info = c.xnai_ok(&["object", "info", &id, "--json"])?;
    assert!(info.contains("freed"), "{info}");
    wait_until(Duration::from_secs(10), "arena empty", || {
        Ok(arena_used(&c)? == 0)
    })?;
    Ok(())
}
