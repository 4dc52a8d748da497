//! `xnai-soak`: does the head stay flat under a long stream of small tasks (issue 14)? Runs N
//! `echo` tasks (1 KiB argument each) with a fixed number in flight through a local cluster of
//! real head and worker processes (`xnai up`; 1, 3 or 5 heads, fsync on as in production),
//! reading and releasing every result in one SDK session. Every `--sample-secs` it samples the
//! cluster (`sample`) into `OUT.csv`; at the end it prints the flatness verdict (`verdict`:
//! each value at the end within 10 % of its value at 100,000 tasks), draws `OUT.svg` (`plot`),
//! saves each head's `/proc/PID/smaps_rollup` (and with `--malloc-stats` glibc's per-arena
//! figures, through gdb), and with `--add-head` adds a fresh head and times its catch-up
//! (`join`). Run (docs/BENCHMARKS.md, "Soak"): `cargo build --release -p xnai-head -p
//! xnai-worker -p xnai-cli -p xnai-tests --bins && XNAI_BIN_DIR=target/release
//! target/release/xnai-soak --heads 3 --tasks 1000000 --add-head --out soak`.

mod join;
mod plot;
mod sample;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use xnai_sdk::{Arg, Client, TaskOptions};
use xnai_tests::{Cluster, ClusterOptions, start_cluster};

use sample::{Csv, Sample};

#[derive(Parser, Debug)]
#[command(about = "xnai soak: head RSS, state and data size over a long run of small tasks")]
struct Args {
    /// Tasks to run in all.
    #[arg(long, default_value_t = 30_000)]
    tasks: u64,
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
    /// Seconds between samples.
    #[arg(long, default_value_t = 10.0)]
    sample_secs: f64,
    /// Output prefix: OUT.csv, OUT.svg, OUT.head-ID.smaps_rollup, ...
    #[arg(long, default_value = "xnai-soak")]
    out: PathBuf,
    /// Tasks done at the reference sample of the flatness verdict (warm-up before it).
    #[arg(long, default_value_t = 100_000)]
    reference_tasks: u64,
    /// Allowed relative difference between the end and the reference.
    #[arg(long, default_value_t = 0.10)]
    tolerance: f64,
    /// After the load, add a fresh head (empty data directory) and time its catch-up.
    #[arg(long)]
    add_head: bool,
    /// Deadline for the added head to apply the leader's commit index.
    #[arg(long, default_value_t = 300)]
    join_deadline_secs: u64,
    /// At the end, ask each head's glibc for its per-arena figures (`malloc_stats` via gdb).
    #[arg(long)]
    malloc_stats: bool,
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

/// Takes, prints and records samples.
struct Recorder {
    probe: Client,
    dir: PathBuf,
    csv: Csv,
    start: Instant,
    samples: Vec<Sample>,
}

impl Recorder {
    async fn sample(&mut self, phase: &'static str, done: u64) -> Result<&Sample> {
        let st = self.probe.status().await?;
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = self.samples.last().map_or(0.0, |p| {
            (done - p.done.min(done)) as f64 / (elapsed - p.elapsed_s).max(1e-3)
        });
        let s = sample::take(&st, &self.dir, elapsed, phase, done, rate);
        self.csv.write(&s)?;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let heads: Vec<String> = s
            .heads
            .iter()
            .map(|h| {
                format!(
                    "h{} {} rss {:.0} (anon {:.0}) data {:.0}",
                    h.id,
                    &h.role[..h.role.len().min(1)],
                    mib(h.rss.total),
                    mib(h.rss.anon),
                    mib(h.data_bytes)
                )
            })
            .collect();
        println!(
            "{:>7.0}s {:<7} {:>8} done {:>6.0}/s  state {} entries {:.2} MiB  | {}",
            s.elapsed_s,
            s.phase,
            s.done,
            s.rate,
            s.state_entries,
            mib(s.state_bytes),
            heads.join(" | ")
        );
        self.samples.push(s);
        Ok(self.samples.last().expect("just pushed"))
    }
}

/// Run the load, sampling every `--sample-secs`; returns when every task was read.
async fn load(args: &Args, client: &Client, rec: &mut Recorder) -> Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let mut set = spawn_load(client, args, done.clone());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(args.sample_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(r) => r.context("a load loop panicked")??,
                None => break,
            },
            _ = tick.tick() => {
                rec.sample("load", done.load(Ordering::Relaxed)).await?;
            }
        }
    }
    rec.sample("load", done.load(Ordering::Relaxed)).await?;
    Ok(())
}

/// Close the load's session and wait until its tasks and objects left the state.
async fn settle(args: &Args, client: &Client, rec: &mut Recorder) -> Result<()> {
    client.close().await?;
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let st = rec.probe.status().await?;
        if st.state.tasks == 0 && st.state.objects == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < end,
            "state not back after 120 s: {:?}",
            st.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rec.sample("settled", args.tasks).await?;
    Ok(())
}

/// Print the flatness verdict; returns the reference sample's time (for the plot).
fn print_verdict(args: &Args, samples: &[Sample]) -> Option<f64> {
    let at = if args.tasks >= 2 * args.reference_tasks {
        args.reference_tasks
    } else {
        println!(
            "\n(run shorter than twice --reference-tasks: reference at {} tasks)",
            args.tasks / 10
        );
        args.tasks / 10
    };
    let end = samples.iter().rev().find(|s| s.phase == "load")?;
    let reference = verdict::reference(samples, at)?;
    println!(
        "\nflatness: end ({} tasks, {:.0} s) against reference ({} tasks, {:.0} s), tolerance {:.0} %",
        end.done,
        end.elapsed_s,
        reference.done,
        reference.elapsed_s,
        args.tolerance * 100.0
    );
    let checks = verdict::checks(reference, end, args.tolerance, 4.0 * args.in_flight as f64);
    for c in &checks {
        println!(
            "  {:<34} {:>14.0} -> {:>14.0}  x{:.3}  {}",
            c.name,
            c.reference,
            c.end,
            c.ratio(),
            if c.flat() { "flat" } else { "NOT FLAT" }
        );
    }
    let flat = checks.iter().all(verdict::Check::flat);
    println!("verdict: {}", if flat { "FLAT" } else { "NOT FLAT" });
    Some(reference.elapsed_s)
}

/// Save each head's smaps_rollup, and with `--malloc-stats` glibc's arena figures.
fn memory_reports(args: &Args, cluster: &Cluster, st: &xnai_sdk::ClusterStatus) {
    for h in &st.heads {
        let out =
            |what: &str| PathBuf::from(format!("{}.head-{}.{what}", args.out.display(), h.id));
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", h.pid)) {
            let _ = std::fs::write(out("smaps_rollup"), text);
        }
        if !args.malloc_stats {
            continue;
        }
        // malloc_stats() writes to the head's stderr, i.e. its log file.
        let log = cluster
            .data_dir
            .path()
            .join("logs")
            .join(format!("head-{}.log", h.id));
        let ran = std::process::Command::new("gdb")
            .args(["-p", &h.pid.to_string(), "-batch", "-ex"])
            .arg("call (void)malloc_stats()")
            .output();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match (ran, text.rfind("Arena 0:")) {
            (Ok(_), Some(at)) => {
                let _ = std::fs::write(out("malloc_stats"), &text[at..]);
            }
            (r, _) => eprintln!("malloc_stats of head {} not captured: {r:?}", h.id),
        }
    }
}

async fn run(args: &Args, cluster: &Cluster) -> Result<()> {
    let client = cluster.client().await?;
    let probe = cluster.client().await?;
    let mut head_ids: Vec<u64> = (1..=args.heads as u64).collect();
    if args.add_head {
        head_ids.push(args.heads as u64 + 1);
    }
    let csv_path = args.out.with_extension("csv");
    let mut rec = Recorder {
        probe,
        dir: cluster.data_dir.path().to_path_buf(),
        csv: Csv::create(&csv_path, head_ids.clone())?,
        start: Instant::now(),
        samples: vec![],
    };
    println!(
        "soak: {} tasks, {} in flight, {} B arguments, {} heads, {} workers; samples -> {}",
        args.tasks,
        args.in_flight,
        args.arg_bytes,
        args.heads,
        args.workers,
        rec.csv.path.display()
    );
    load(args, &client, &mut rec).await?;
    let load_s = rec.start.elapsed().as_secs_f64();
    println!(
        "\n{} tasks in {load_s:.1} s: {:.0} tasks/s overall",
        args.tasks,
        args.tasks as f64 / load_s
    );
    settle(args, &client, &mut rec).await?;
    let mark = print_verdict(args, &rec.samples);
    let st = rec.probe.status().await?;
    memory_reports(args, cluster, &st);

    if args.add_head {
        let id = args.heads as u64 + 1;
        println!("\n--- adding head {id} with an empty data directory");
        let (head, address) = join::start(cluster, id).await?;
        let j = join::catch_up(
            &rec.probe,
            cluster,
            &head,
            &address,
            Duration::from_secs(args.join_deadline_secs),
        )
        .await?;
        rec.sample("join", args.tasks).await?;
        match j.caught_up_after {
            Some(d) => println!(
                "head {} (pid {}) applied the leader's commit index {} after {:.2} s, by snapshot: {}",
                j.id,
                j.pid,
                j.target,
                d.as_secs_f64(),
                j.by_snapshot
            ),
            None => println!(
                "head {} did NOT reach commit index {} within {} s (by snapshot: {})",
                j.id, j.target, args.join_deadline_secs, j.by_snapshot
            ),
        }
        drop(head);
    }
    let svg = plot::render(
        &format!(
            "xnai-soak: {} tasks, {} heads, {} in flight (dashed: reference sample)",
            args.tasks, args.heads, args.in_flight
        ),
        &rec.samples,
        &head_ids,
        mark,
    );
    let svg_path = args.out.with_extension("svg");
    std::fs::write(&svg_path, svg)?;
    println!("\nwrote {} and {}", csv_path.display(), svg_path.display());
    Ok(())
}

fn main() -> Result<()> {
    xnai_proto::alloc::tune_for_object_streams();
    let args = Args::parse();
    anyhow::ensure!(
        args.in_flight > 0 && args.sample_secs > 0.0 && args.tasks > 0,
        "tasks, in-flight and sample-secs must be > 0"
    );
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cluster = start_cluster(ClusterOptions {
        heads: args.heads,
        workers: args.workers,
        arena_bytes: "1GiB".into(),
    })
    .context("starting the soak cluster")?;
    rt.block_on(run(&args, &cluster))
}
