//! `xnai-fault-bench`: how fast xnai heals, on a real local cluster: kill -9 to the worker
//! declared dead, kill -9 to every retried result of 20 running tasks, kill -9 to the first
//! answered call of a restarted actor, and kill -9 to a rebuilt 100 MB object (plus the
//! rebuild alone, from the declaration). Prints a markdown table of medians (min..max).
//!
//! Run: `cargo build --release --bins && XNAI_BIN_DIR=target/release target/release/xnai-fault-bench`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use xnai_sdk::{ActorOptions, Resources, TaskOptions};
use xnai_tests::{
    Cluster, ClusterOptions, cluster_with_labelled_worker, start_cluster, wait_until,
};

#[derive(Parser, Debug)]
#[command(about = "xnai fault-tolerance timings: detection, retries, actor restarts, rebuilds")]
struct Args {
    /// Repeats of each measurement (a fresh cluster each); the table shows the median.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

fn kill9(c: &Cluster, address: &str) -> Result<()> {
    let row = row(c, address)?;
    let pid = row["pid"].as_i64().context("no pid")? as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).context("kill -9")
}

fn row(c: &Cluster, id_or_address: &str) -> Result<serde_json::Value> {
    c.status()?["workers"]
        .as_array()
        .and_then(|ws| {
            ws.iter()
                .find(|w| w["address"] == id_or_address || w["worker_id"] == id_or_address)
                .cloned()
        })
        .context("worker not in status")
}

fn pool(cpus: f64) -> Resources {
    let mut r = Resources {
        cpus,
        ..Default::default()
    };
    r.labels.insert("pool".into(), "x".into());
    r
}

/// (kill → declared dead, kill → all 20 retried results).
fn retries(rt: &tokio::runtime::Runtime) -> Result<(Duration, Duration)> {
    let mut c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let a = c.add_worker(&["--labels", "pool=x", "--cpus", "4"])?;
    let client = rt.block_on(c.client())?;
    let opts = TaskOptions {
        resources: Some(pool(0.1)),
        max_retries: Some(3),
        ..Default::default()
    };
    let refs = rt.block_on(async {
        let mut refs = Vec::new();
        for _ in 0..20 {
            refs.push(
                client
                    .submit("sleep", vec!["2000".into()], opts.clone())
                    .await?,
            );
        }
        anyhow::Ok(refs)
    })?;
    wait_until(Duration::from_secs(30), "20 running", || {
        Ok(row(&c, &a)?["running_tasks"].as_u64() == Some(20))
    })?;
    c.add_worker(&["--labels", "pool=x", "--cpus", "4"])?;
    let t0 = Instant::now();
    kill9(&c, &a)?;
    let mut declared = Duration::ZERO;
    wait_until(Duration::from_secs(30), "declared dead", || {
        let dead = row(&c, &a)?["state"] == "dead";
        declared = t0.elapsed();
        Ok(dead)
    })?;
    rt.block_on(async {
        for r in &refs {
            client.get(r, Duration::from_secs(60)).await?;
        }
        anyhow::Ok(())
    })?;
    Ok((declared, t0.elapsed()))
}

/// kill → the first call answered by the restarted actor.
fn actor_restart(rt: &tokio::runtime::Runtime) -> Result<Duration> {
    let (mut c, a) = cluster_with_labelled_worker("pool=x")?;
    let client = rt.block_on(c.client())?;
    // A call on a connection that just broke may or may not have reached the dead worker: allow
    // one transparent retry so the measurement is the restart, not the SDK's caution.
    let opts = ActorOptions {
        max_restarts: 2,
        max_task_retries: 1,
        resources: Some(pool(0.0)),
        ..Default::default()
    };
    let actor = rt.block_on(client.create_actor("counter", vec![], opts))?;
    rt.block_on(actor.call("incr", vec![]))?;
    c.add_worker(&["--labels", "pool=x"])?;
    let t0 = Instant::now();
    kill9(&c, &a)?;
    rt.block_on(actor.call("incr", vec![]))?;
    Ok(t0.elapsed())
}

/// (kill → rebuilt 100 MB object read, declared dead → object ready again).
fn rebuild(rt: &tokio::runtime::Runtime) -> Result<(Duration, Duration)> {
    let c = start_cluster(ClusterOptions {
        workers: 2,
        arena_bytes: "512MiB".into(),
        ..Default::default()
    })?;
    let client = rt.block_on(c.client())?;
    let r = rt.block_on(client.submit(
        "fill",
        vec!["100000000".into(), "5".into()],
        TaskOptions::default(),
    ))?;
    let first = rt.block_on(client.get(&r, Duration::from_secs(120)))?;
    let info = rt.block_on(client.object_info(&r))?;
    let holder = info.locations.first().context("no copy")?.address.clone();
    let t0 = Instant::now();
    kill9(&c, &holder)?;
    let mut declared = Instant::now();
    wait_until(Duration::from_secs(30), "declared dead", || {
        declared = Instant::now();
        Ok(row(&c, &holder)?["state"] == "dead")
    })?;
    let again = rt.block_on(client.get(&r, Duration::from_secs(120)))?;
    let total = t0.elapsed();
    anyhow::ensure!(again == first, "rebuilt bytes differ");
    Ok((total, declared.elapsed()))
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let (Some(min), Some(max)) = (v.first(), v.last()) else {
        return "n/a".into();
    };
    format!(
        "{:.0} ms ({:.0}..{:.0})",
        ms(&v[v.len() / 2]),
        ms(min),
        ms(max)
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let (mut dead, mut retried, mut restart, mut rebuilt, mut rebuild_only) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..args.repeats {
        eprintln!("repeat {} of {}", i + 1, args.repeats);
        let (d, all) = retries(&rt)?;
        dead.push(d);
        retried.push(all);
        restart.push(actor_restart(&rt)?);
        let (total, only) = rebuild(&rt)?;
        rebuilt.push(total);
        rebuild_only.push(only);
    }
    println!("| measurement | xnai (median, min..max) |");
    println!("|---|---|");
    println!("| kill -9 → worker declared dead | {} |", stats(dead));
    println!(
        "| kill -9 → all 20 retried `sleep 2000` results | {} |",
        stats(retried)
    );
    println!(
        "| kill -9 → first call answered by the restarted actor | {} |",
        stats(restart)
    );
    println!(
        "| kill -9 → rebuilt 100 MB object read | {} |",
        stats(rebuilt)
    );
    println!(
        "| declared dead → 100 MB object rebuilt and read | {} |",
        stats(rebuild_only)
    );
    Ok(())
}
