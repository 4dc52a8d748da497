//! `xnai-soak`: does the head's cost per task grow with the work done before it? Runs N `echo`
//! tasks (1 KiB argument each) with a fixed number in flight through a local cluster, gets and
//! releases every result in one SDK session, and prints one row per window of tasks.
//!
//! Each row: the window's rate, the head's data-directory size and RSS (`/proc/PID/status`), and
//! the control state's entries and bytes (`xnai status`). After the last task the session is
//! closed and a final row shows what the head keeps. Run (docs/BENCHMARKS.md, "History cliff"):
//! `cargo build -p xnai-head -p xnai-worker -p xnai-client -p xnai-tests --bins &&
//!  target/debug/xnai-soak --tasks 30000`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use xnai_sdk::{Arg, Client, TaskOptions};
use xnai_tests::{ClusterOptions, start_cluster};

#[derive(Parser, Debug)]
#[command(about = "xnai soak: task rate, head data and RSS as history grows")]
struct Args {
    /// Tasks to run in all.
    #[arg(long, default_value_t = 30_000)]
    tasks: u64,
    /// Tasks per reported window.
    #[arg(long, default_value_t = 5_000)]
    window: u64,
    /// Submissions in flight (each loop submits, gets, releases).
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Bytes of the inline argument of each `echo`.
    #[arg(long, default_value_t = 1024)]
    arg_bytes: usize,
    /// Workers in the cluster.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Head replicas.
    #[arg(long, default_value_t = 1)]
    heads: usize,
    /// Also write the rows as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One sample of the cluster after a window.
#[derive(Debug, serde::Serialize)]
struct Row {
    /// Tasks completed so far.
    done: u64,
    /// Tasks per second over this window (0 for the final row).
    rate: f64,
    /// Seconds since the start.
    elapsed_s: f64,
    /// Bytes under the leader's data directory now, and the most seen so far.
    data_bytes: u64,
    data_peak_bytes: u64,
    /// The leader's resident memory.
    rss_bytes: u64,
    /// The leader's applied Raft index (log entries so far).
    commit_index: u64,
    /// Entries the head reports: tasks, objects (and the state's own size when it reports it).
    tasks: u64,
    objects: u64,
    state_entries: u64,
    state_bytes: u64,
}

/// Total size of the files under `dir` (0 for what cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `VmRSS` of a process in bytes (0 if it cannot be read).
fn rss_bytes(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The soak loop's view of the cluster it measures.
struct Probe {
    cluster: xnai_tests::Cluster,
    client: Client,
    data_peak: u64,
}

impl Probe {
    /// The leader's pid and data directory (`DIR/head-ID`), from a status reply.
    fn leader(&self, st: &xnai_sdk::ClusterStatus) -> Result<(u32, std::path::PathBuf)> {
        let h = st
            .heads
            .iter()
            .find(|h| h.role == "leader" || h.role == "single")
            .or(st.heads.first())
            .context("status lists no head")?;
        let dir = self.cluster.data_dir.path().join(format!("head-{}", h.id));
        Ok((h.pid, dir))
    }

    /// Sample the leader's data directory; remembers the peak.
    async fn sample_data(&mut self) -> Result<u64> {
        let st = self.client.status().await?;
        let (_, dir) = self.leader(&st)?;
        let now = dir_bytes(&dir);
        self.data_peak = self.data_peak.max(now);
        Ok(now)
    }

    async fn row(&mut self, done: u64, rate: f64, start: Instant) -> Result<Row> {
        let st = self.client.status().await?;
        let (pid, dir) = self.leader(&st)?;
        let data_bytes = dir_bytes(&dir);
        self.data_peak = self.data_peak.max(data_bytes);
        Ok(Row {
            done,
            rate,
            elapsed_s: start.elapsed().as_secs_f64(),
            data_bytes,
            data_peak_bytes: self.data_peak,
            rss_bytes: rss_bytes(pid),
            commit_index: st
                .heads
                .iter()
                .find(|h| h.pid == pid)
                .map_or(0, |h| h.commit_index),
            tasks: st.tasks,
            objects: st.objects,
            state_entries: st.state.entries(),
            state_bytes: st.state.approx_bytes,
        })
    }
}

fn print_row(r: &Row) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.2} |",
        r.done,
        r.rate,
        r.elapsed_s,
        mib(r.data_bytes),
        mib(r.data_peak_bytes),
        mib(r.rss_bytes),
        r.commit_index,
        r.tasks,
        r.objects,
        r.state_entries,
        mib(r.state_bytes),
    );
}

/// `in_flight` loops, each: submit `echo` with the argument, get the result, release it.
fn spawn_load(
    client: &Client,
    args: &Args,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinSet<Result<()>> {
    let taken = Arc::new(AtomicU64::new(0));
    let arg = Bytes::from(vec![b'x'; args.arg_bytes]);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.in_flight {
        let (client, taken, done, arg, total) = (
            client.clone(),
            taken.clone(),
            done.clone(),
            arg.clone(),
            args.tasks,
        );
        set.spawn(async move {
            while taken.fetch_add(1, Ordering::Relaxed) < total {
                let r = client
                    .submit(
                        "echo",
                        vec![Arg::Value(arg.clone())],
                        TaskOptions::default(),
                    )
                    .await?;
                let got = client.get(&r, Duration::from_secs(120)).await?;
                anyhow::ensure!(got.len() == arg.len(), "echo returned {} bytes", got.len());
                client.release(&[r]);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    set
}

async fn soak(args: &Args, probe: &mut Probe) -> Result<Vec<Row>> {
    println!(
        "| done | tasks/s (window) | elapsed s | head data MiB | data peak MiB | head RSS MiB | \
         raft index | tasks | objects | state entries | state MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let st = probe.client.status().await?;
    let (pid, dir) = probe.leader(&st)?;
    eprintln!("leader head: pid {pid}, data {}", dir.display());
    let mut rows = vec![probe.row(0, 0.0, Instant::now()).await?];
    print_row(&rows[0]);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut load = spawn_load(&probe.client, args, done.clone());
    let (mut next, mut last_t, mut last_n) = (args.window, Instant::now(), 0u64);
    let mut last_data = Instant::now();
    while next <= args.tasks {
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(20), load.join_next()).await
        {
            r??;
        }
        let n = done.load(Ordering::Relaxed);
        if last_data.elapsed() >= Duration::from_secs(1) {
            probe.sample_data().await?;
            last_data = Instant::now();
        }
        if n >= next {
            let rate = (n - last_n) as f64 / last_t.elapsed().as_secs_f64();
            let row = probe.row(n, rate, start).await?;
            print_row(&row);
            rows.push(row);
            (last_t, last_n) = (Instant::now(), n);
            next += args.window;
        }
    }
    while let Some(r) = load.join_next().await {
        r??;
    }
    println!(
        "\n{} tasks in {:.1} s: {:.0} tasks/s overall",
        args.tasks,
        start.elapsed().as_secs_f64(),
        args.tasks as f64 / start.elapsed().as_secs_f64()
    );
    probe.client.close().await?;
    // Let the head apply the last releases, then show what it keeps.
    let settle = Instant::now();
    let mut last = probe.row(args.tasks, 0.0, start).await?;
    while settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = probe.row(args.tasks, 0.0, start).await?;
    }
    println!("\nafter the session closed (5 s later):");
    print_row(&last);
    rows.push(last);
    Ok(rows)
}

fn main() -> Result<()> {
    xnai_proto::alloc::tune_for_object_streams();
    let args = Args::parse();
    anyhow::ensure!(
        args.window > 0 && args.in_flight > 0,
        "window and in-flight must be > 0"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cluster = start_cluster(ClusterOptions {
        heads: args.heads,
        workers: args.workers,
        arena_bytes: "1GiB".into(),
    })
    .context("starting the soak cluster")?;
    let rows = rt.block_on(async {
        let client = cluster.client().await?;
        let mut probe = Probe {
            cluster,
            client,
            data_peak: 0,
        };
        let rows = soak(&args, &mut probe).await?;
        let first = rows.get(1).map_or(0.0, |r| r.rate);
        let worst_last = rows
            .iter()
            .rev()
            .skip(1)
            .take(2)
            .map(|r| r.rate)
            .fold(f64::INFINITY, f64::min);
        if first > 0.0 {
            println!(
                "\nlast windows / first window = {:.2} (target >= 0.9)",
                worst_last / first
            );
        }
        anyhow::Ok(rows)
    })?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}
