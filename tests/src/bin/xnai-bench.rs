//! `xnai-bench`: the shapes `ray microbenchmark` reports, measured on a real local cluster,
//! side by side with a bare tonic round trip between two processes (the loopback ceiling),
//! in one run. Prints a markdown table of medians (and min..max) over repeats.
//!
//! Run: `cargo build --release --bins && target/release/xnai-bench` (see docs/BENCHMARKS.md).

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use xnai_sdk::{ActorOptions, Arg, Client, TaskOptions};
use xnai_tests::{ClusterOptions, start_cluster};

#[derive(Parser, Debug)]
#[command(about = "xnai microbenchmarks (Ray microbenchmark shapes) with a tonic loopback ceiling")]
struct Args {
    /// Repeats of each measurement; the table shows the median.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Seconds each repeat of a rate measurement runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Workers in the benchmark cluster.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Internal: serve the bare tonic ceiling (health service) and print the address.
    #[arg(long, hide = true)]
    ceiling_server: bool,
}

/// One row of results.
#[derive(serde::Serialize)]
struct Row {
    name: String,
    unit: String,
    median: f64,
    min: f64,
    max: f64,
}

fn summarize(name: &str, unit: &str, mut v: Vec<f64>) -> Row {
    v.sort_by(|a, b| a.total_cmp(b));
    let median = if v.is_empty() { 0.0 } else { v[v.len() / 2] };
    Row {
        name: name.into(),
        unit: unit.into(),
        median,
        min: v.first().copied().unwrap_or(0.0),
        max: v.last().copied().unwrap_or(0.0),
    }
}

/// Run `op` with `concurrency` loops in flight for `secs`; returns completed ops per second.
async fn rate<F, Fut>(secs: f64, concurrency: usize, op: F) -> Result<f64>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let op = op.clone();
        set.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                op().await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(r) = set.join_next().await {
        total += r??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn serve_ceiling() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let (_reporter, health) = xnai_proto::serve::health();
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await?;
    Ok(())
}

/// Bare tonic: the smallest unary call (health check) to a server in another process.
async fn ceiling(args: &Args, rows: &mut Vec<Row>) -> Result<()> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--ceiling-server")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("ceiling stdout")?).read_line(&mut line)?;
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", line.trim()))?
        .connect()
        .await?;
    let client = tonic_health::pb::health_client::HealthClient::new(ch);
    let call = move || {
        let mut c = client.clone();
        async move {
            c.check(tonic_health::pb::HealthCheckRequest::default())
                .await?;
            anyhow::Ok(())
        }
    };
    let (mut sync, mut asy) = (vec![], vec![]);
    for _ in 0..args.repeats {
        sync.push(rate(args.seconds, 1, call.clone()).await?);
        asy.push(rate(args.seconds, 64, call.clone()).await?);
    }
    rows.push(summarize(
        "tonic loopback ceiling, sync (1 in flight)",
        "round trips/s",
        sync,
    ));
    rows.push(summarize(
        "tonic loopback ceiling, async (64 in flight)",
        "round trips/s",
        asy,
    ));
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

async fn tasks(args: &Args, client: &Client, rows: &mut Vec<Row>) -> Result<()> {
    let c = client.clone();
    let one = move || {
        let c = c.clone();
        async move {
            let r = c
                .submit(
                    "echo",
                    vec![Arg::Value(Bytes::from_static(b"x"))],
                    TaskOptions::default(),
                )
                .await?;
            c.get(&r, Duration::from_secs(30)).await?;
            anyhow::Ok(())
        }
    };
    let mut sync = vec![];
    for _ in 0..args.repeats {
        sync.push(rate(args.seconds, 1, one.clone()).await?);
    }
    rows.push(summarize("single client tasks sync", "tasks/s", sync));

    let mut asy = vec![];
    for _ in 0..args.repeats {
        let n = 500;
        let start = Instant::now();
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            refs.push(
                client
                    .submit(
                        "echo",
                        vec![Arg::Value(Bytes::from_static(b"x"))],
                        TaskOptions::default(),
                    )
                    .await?,
            );
        }
        for r in &refs {
            client.get(r, Duration::from_secs(60)).await?;
        }
        asy.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rows.push(summarize(
        "single client tasks async (500 submitted, then got)",
        "tasks/s",
        asy,
    ));
    Ok(())
}

async fn actors(
    args: &Args,
    cluster: &xnai_tests::Cluster,
    client: &Client,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let actor = client
        .create_actor("counter", vec![], ActorOptions::default())
        .await?;
    let a = actor.clone();
    let call = move || {
        let a = a.clone();
        async move {
            a.call("incr", vec![]).await?;
            anyhow::Ok(())
        }
    };
    let (mut sync, mut asy) = (vec![], vec![]);
    for _ in 0..args.repeats {
        sync.push(rate(args.seconds, 1, call.clone()).await?);
        asy.push(rate(args.seconds, 64, call.clone()).await?);
    }
    rows.push(summarize("1:1 actor calls sync", "calls/s", sync));
    rows.push(summarize(
        "1:1 actor calls async (64 in flight)",
        "calls/s",
        asy,
    ));

    // n:n: n callers, each with its own connection and actor, 16 calls in flight each.
    let n = args.workers.max(2);
    let mut handles = vec![];
    for _ in 0..n {
        let c = cluster.client().await?;
        handles.push(
            c.create_actor("counter", vec![], ActorOptions::default())
                .await?,
        );
    }
    let mut nn = vec![];
    for _ in 0..args.repeats {
        let mut set = tokio::task::JoinSet::new();
        for h in &handles {
            let h = h.clone();
            let secs = args.seconds;
            set.spawn(async move {
                rate(secs, 16, move || {
                    let h = h.clone();
                    async move {
                        h.call("incr", vec![]).await?;
                        anyhow::Ok(())
                    }
                })
                .await
            });
        }
        let mut sum = 0.0;
        while let Some(r) = set.join_next().await {
            sum += r??;
        }
        nn.push(sum);
    }
    rows.push(summarize(
        &format!("n:n actor calls async (n={n}, 16 in flight each)"),
        "calls/s",
        nn,
    ));
    Ok(())
}

/// Put then get objects of 1 MiB and 100 MiB. `how` names the path in the row ("" for the
/// default client, which uses shared memory with same-host workers).
async fn objects(args: &Args, client: &Client, how: &str, rows: &mut Vec<Row>) -> Result<()> {
    for (label, size, count) in [("1 MiB", 1usize << 20, 50usize), ("100 MiB", 100 << 20, 3)] {
        let data = Bytes::from(xnai_sdk::builtins::fill_bytes(size, 5));
        let (mut put, mut get) = (vec![], vec![]);
        for _ in 0..args.repeats {
            let start = Instant::now();
            let mut refs = vec![];
            for _ in 0..count {
                refs.push(client.put(data.clone()).await?);
            }
            put.push((size * count) as f64 / start.elapsed().as_secs_f64() / 1e9);
            let start = Instant::now();
            for r in &refs {
                let got = client.get(r, Duration::from_secs(60)).await?;
                anyhow::ensure!(
                    got.len() == size,
                    "got {} bytes, expected {size}",
                    got.len()
                );
            }
            get.push((size * count) as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
        rows.push(summarize(&format!("put {label} objects{how}"), "GB/s", put));
        rows.push(summarize(&format!("get {label} objects{how}"), "GB/s", get));
    }
    Ok(())
}

fn main() -> Result<()> {
    // The same allocator tuning as the xnai binaries (an SDK user calls it in their main).
    xnai_proto::alloc::tune_for_object_streams();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.ceiling_server {
        return rt.block_on(serve_ceiling());
    }
    let cluster = start_cluster(ClusterOptions {
        heads: 1,
        workers: args.workers,
        arena_bytes: "2GiB".into(),
    })?;
    let mut rows = vec![];
    rt.block_on(async {
        ceiling(&args, &mut rows).await?;
        let client = cluster.client().await?;
        tasks(&args, &client, &mut rows).await?;
        actors(&args, &cluster, &client, &mut rows).await?;
        objects(&args, &client, "", &mut rows).await?;
        // The same transfers forced over gRPC streams (what a client on another host gets).
        let mut config = cluster.client_config();
        config.shared_memory = false;
        let streamed = Client::connect(config).await?;
        objects(&args, &streamed, ", streamed", &mut rows).await?;
        anyhow::Ok(())
    })?;
    println!("| benchmark | median | min..max | unit |");
    println!("|---|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {:.2} | {:.2}..{:.2} | {} |",
            r.name, r.median, r.min, r.max, r.unit
        );
    }
    let ceiling = rows
        .iter()
        .find(|r| r.name.starts_with("tonic loopback ceiling, sync"))
        .map(|r| r.median);
    let actor_sync = rows
        .iter()
        .find(|r| r.name == "1:1 actor calls sync")
        .map(|r| r.median);
    if let (Some(c), Some(a)) = (ceiling, actor_sync) {
        println!(
            "\nsync actor calls / tonic ceiling = {:.2} (target >= 0.5)",
            a / c
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}
