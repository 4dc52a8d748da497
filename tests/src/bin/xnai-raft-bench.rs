//! `xnai-raft-bench`: what the Raft-replicated head costs and how fast it recovers, on real
//! local clusters started by `xnai up`:
//! - failover: time from `kill -9` of the leader to the next acknowledged write (a client
//!   writing in a loop), over `--runs` fresh 3-head clusters: median and max;
//! - committed writes per second (SubmitTask with no worker registered, so each is one
//!   replicated, fsynced write and nothing else) with 1 and 64 concurrent clients on 3 heads;
//! - task submit latency p50/p99 (sequential SubmitTask, workers running the tasks) on 3
//!   heads against 1.
//!
//! Run: `cargo build --release --bins && target/release/xnai-raft-bench` (docs/BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use nix::sys::signal::Signal;
use xnai_sdk::{Arg, Client, TaskOptions};
use xnai_tests::{Cluster, ClusterOptions, start_cluster};

#[derive(Parser, Debug)]
#[command(about = "xnai Raft head benchmarks: failover time, committed writes/s, submit latency")]
struct Args {
    /// Leader kills (each on a fresh 3-head cluster).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Seconds each throughput measurement runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Sequential submissions for the latency percentiles.
    #[arg(long, default_value_t = 1000)]
    submits: usize,
}

fn echo(text: String) -> Vec<Arg> {
    vec![Arg::Value(Bytes::from(text))]
}

fn cluster(heads: usize, workers: usize) -> Result<Cluster> {
    start_cluster(ClusterOptions {
        heads,
        workers,
        arena_bytes: "256MiB".into(),
    })
}

/// Kill the leader while one client writes in a loop; seconds from the kill until a write
/// started after it is acknowledged.
async fn failover_once() -> Result<f64> {
    let c = cluster(3, 0)?;
    let client = Arc::new(c.client().await?);
    client
        .submit("echo", echo("warm".into()), TaskOptions::default())
        .await?;
    let leader = c.leader()?;
    let stop = Arc::new(AtomicBool::new(false));
    // Bounded: the writer waits when the reader falls 1,024 acknowledgements behind.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Instant)>(1_024);
    let writer = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                if client
                    .submit("echo", echo(format!("w{i}")), TaskOptions::default())
                    .await
                    .is_ok()
                {
                    let _ = tx.send((started, Instant::now())).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    c.signal_head(&leader, Signal::SIGKILL)?;
    let gap = loop {
        let (started, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .context("no write within 30 s of the kill")?
            .context("the writer stopped")?;
        if started > killed {
            break at - killed;
        }
    };
    stop.store(true, Ordering::SeqCst);
    drop(rx); // a writer waiting on a full channel gets an error and sees `stop`
    let _ = writer.await;
    Ok(gap.as_secs_f64())
}

/// Acknowledged writes per second with `concurrency` clients writing in loops.
async fn writes_per_sec(client: &Arc<Client>, concurrency: usize, secs: f64) -> Result<f64> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut loops = Vec::new();
    for k in 0..concurrency {
        let client = client.clone();
        loops.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                client
                    .submit("queued", echo(format!("{k}-{n}")), TaskOptions::default())
                    .await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await??;
    }
    Ok(total as f64 / secs)
}

/// p50 and p99 of sequential SubmitTask round trips, in milliseconds.
async fn submit_latency(client: &Client, n: usize) -> Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        client
            .submit("echo", echo(format!("l{i}")), TaskOptions::default())
            .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((pick(0.50), pick(0.99)))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.submits == 0 {
        bail!("--runs and --submits must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut gaps = Vec::new();
        for run in 1..=args.runs {
            let gap = failover_once().await?;
            eprintln!("failover run {run}: {:.0} ms", gap * 1e3);
            gaps.push(gap * 1e3);
        }
        gaps.sort_by(|a, b| a.total_cmp(b));
        let median = gaps[gaps.len() / 2];
        let max = gaps[gaps.len() - 1];

        let c = cluster(3, 0)?;
        let client = Arc::new(c.client().await?);
        let w1 = writes_per_sec(&client, 1, args.seconds).await?;
        let w64 = writes_per_sec(&client, 64, args.seconds).await?;
        drop(client);
        drop(c);

        let mut latency = Vec::new();
        for heads in [1, 3] {
            let c = cluster(heads, 2)?;
            let client = c.client().await?;
            submit_latency(&client, 50).await?;
            latency.push((heads, submit_latency(&client, args.submits).await?));
        }

        println!("| measurement | result |");
        println!("|---|---|");
        println!(
            "| leader kill -> next acknowledged write ({} runs) | median {median:.0} ms, max {max:.0} ms |",
            args.runs
        );
        println!("| committed writes/s, 3 heads, 1 client | {w1:.0} |");
        println!("| committed writes/s, 3 heads, 64 clients | {w64:.0} |");
        for (heads, (p50, p99)) in latency {
            println!(
                "| task submit latency, {heads} head(s) | p50 {p50:.2} ms, p99 {p99:.2} ms |"
            );
        }
        anyhow::Ok(())
    })
}
