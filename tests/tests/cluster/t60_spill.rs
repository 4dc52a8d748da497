//! Spilling end to end (issue 14): a workload keeps live objects totalling 4x the arenas'
//! capacity (task outputs and puts, none released), every task completes, a task reads a
//! spilled argument, and every object reads back byte for byte, through shared memory and
//! through the gRPC stream; `status` shows the spills and restores.

use std::time::Duration;

use bytes::Bytes;
use xnai_sdk::builtins::fill_bytes;
use xnai_sdk::{Arg, Client, ObjectRef, TaskOptions};
use xnai_tests::{ClusterOptions, init_tracing, sha256_hex, start_cluster_with_env};

const WAIT: Duration = Duration::from_secs(180);
const OBJECT: usize = 4 << 20;
const ARENA: usize = 32 << 20;
const WORKERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t60_cluster_keeps_4x_its_arenas_of_live_objects_by_spilling() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: two workers with 32 MiB arenas and 256 MiB spill directories");
    let c = start_cluster_with_env(
        ClusterOptions {
            workers: WORKERS,
            arena_bytes: format!("{ARENA}"),
            ..Default::default()
        },
        &[("XNAI_SPILL_BYTES", "256MiB")],
    )?;
    let client = c.client().await?;
    let live = 4 * WORKERS * ARENA / OBJECT; // 64 objects of 4 MiB = 256 MiB
    let puts = live / 4;

    tracing::info!(
        "--- phase: {} fill tasks and {puts} puts, all kept",
        live - puts
    );
    let mut objects: Vec<(ObjectRef, u64)> = Vec::new();
    for seed in 0..(live - puts) as u64 {
        let args: Vec<Arg> = vec![
            OBJECT.to_string().as_str().into(),
            seed.to_string().as_str().into(),
        ];
        let r = client.submit("fill", args, TaskOptions::default()).await?;
        objects.push((r, seed));
    }
    for seed in 1000..1000 + puts as u64 {
        let r = client.put(Bytes::from(fill_bytes(OBJECT, seed))).await?;
        objects.push((r, seed));
    }
    let refs: Vec<ObjectRef> = objects.iter().map(|(r, _)| *r).collect();
    let done = client.wait(&refs, refs.len(), WAIT).await?;
    assert_eq!(done.done.len(), refs.len(), "every task completed");

    tracing::info!("--- phase: a task reads the earliest (spilled) output as its argument");
    let (first, seed) = objects[0];
    let digest = client
        .submit("digest", vec![first.into()], TaskOptions::default())
        .await?;
    let got = client.get(&digest, WAIT).await?;
    assert_eq!(
        std::str::from_utf8(&got)?,
        sha256_hex(&fill_bytes(OBJECT, seed))
    );

    tracing::info!("--- phase: every object reads back byte for byte, mapped and streamed");
    let streaming = Client::connect(xnai_sdk::ClientConfig {
        shared_memory: false,
        ..c.client_config()
    })
    .await?;
    for (i, (r, seed)) in objects.iter().enumerate() {
        let reader = if i % 2 == 0 { &client } else { &streaming };
        let got = reader.get(r, WAIT).await?;
        assert!(
            got.as_ref() == fill_bytes(OBJECT, *seed).as_slice(),
            "object {i} (seed {seed}) differs"
        );
    }

    tracing::info!("--- phase: status shows spills and restores");
    let status = client.status().await?;
    let spills: u64 = status.workers.iter().map(|w| w.spill.spills).sum();
    let restores: u64 = status.workers.iter().map(|w| w.spill.restores).sum();
    let spilled_now: u64 = status.workers.iter().map(|w| w.spill.used).sum();
    tracing::info!(spills, restores, spilled_now, "spill figures");
    assert!(
        spills as usize >= live / 2,
        "most objects went to disk: {spills}"
    );
    assert!(restores > 0, "reads brought objects back");
    assert!(status.workers.iter().all(|w| w.spill.capacity == 256 << 20));
    Ok(())
}
