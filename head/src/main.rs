//! The `xnai-head` binary: parses flags, sets up logging, and runs the head until SIGTERM or
//! SIGINT; exits 1 with the cause if an essential task dies. All the work is in the library
//! (`xnai_head::run`). `xnai-head health --addr HOST:PORT [--service NAME]` probes a head's
//! standard health service (exit 0 only if SERVING): the compose healthcheck.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xnai_head::HeadConfig;
use xnai_head::raft::{
    DEFAULT_ELECTION_TICK, DEFAULT_HEARTBEAT_TICK, DEFAULT_SNAPSHOT_EVERY, RaftConfig,
    chunks::DEFAULT_MAX_SNAPSHOT_BYTES, parse_peers,
};
use xnai_proto::timings::DEFAULT_WORKER_LEASE;

/// xnai head: the control plane of an xnai cluster.
#[derive(Debug, Parser)]
#[command(
    name = "xnai-head",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// This head's id (a small integer).
    #[arg(long, default_value_t = 1)]
    id: u64,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Serve on this inherited, already-listening socket instead of binding --listen (the
    /// launcher hands ports over this way so no other process can take them first).
    #[arg(long, conflicts_with = "listen")]
    listen_fd: Option<i32>,
    /// Directory for the durable state (sled). Required.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Cluster token required on every call. Required.
    #[arg(long, env = "XNAI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Write the bound host:port here once serving.
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Most tasks pending or running before SubmitTask is refused.
    #[arg(long, default_value_t = 100_000)]
    max_pending_tasks: u64,
    /// Heartbeat lease in ms: a worker silent this long is declared dead.
    /// Heartbeat, silence and probe intervals derive from it (`xnai_proto::timings`).
    #[arg(long, env = "XNAI_WORKER_LEASE_MS", default_value_t = DEFAULT_WORKER_LEASE.as_millis() as u64)]
    worker_lease_ms: u64,
    /// Log entries between snapshots (0: never).
    #[arg(long, env = "XNAI_SNAPSHOT_EVERY", default_value_t = DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// Largest snapshot this head accepts from another head, in bytes.
    #[arg(long, env = "XNAI_MAX_SNAPSHOT_BYTES", default_value_t = DEFAULT_MAX_SNAPSHOT_BYTES)]
    max_snapshot_bytes: u64,
    /// The initial Raft group, this head included: `1=host:port,2=host:port,3=host:port`.
    /// Without it the head is a one-head group.
    #[arg(long, value_parser = parse_peers, default_value = "")]
    peers: std::collections::BTreeMap<u64, String>,
    /// Start with empty storage and wait to be added to a running group (`xnai head add`).
    #[arg(long)]
    join: bool,
    /// Cluster id: heads refuse Raft traffic from another cluster.
    #[arg(long, default_value = "xnai")]
    cluster_id: String,
    /// Milliseconds between Raft ticks.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Election timeout in ticks (raft randomises it between this and twice this).
    #[arg(long, default_value_t = DEFAULT_ELECTION_TICK)]
    election_tick: usize,
    /// Leader heartbeat interval in ticks.
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_TICK)]
    heartbeat_tick: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the head's standard health service says SERVING for SERVICE, 1 otherwise.
    Health {
        /// HOST:PORT of the head.
        #[arg(long)]
        addr: String,
        /// Service name: "" (the whole head, the default), xnai.v1.Head,
        /// xnai.v1.WorkerRegistry or xnai.v1.Peer.
        #[arg(long, default_value = "")]
        service: String,
    },
}

/// How long a health probe may take to connect, and then to answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Errors print as one line (`xnai-head: ...`) and exit with status 1. Public so the test-only
/// `xnai-head-chaos-bug` binary runs the very same entry point.
pub fn main() -> std::process::ExitCode {
    xnai_proto::alloc::tune_for_object_streams();
    return_free_memory_periodically();
    match serve() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // HeadError messages already include their cause: print one line, not the chain.
            eprintln!("xnai-head: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Health { addr, service }) = &args.command {
        let serving = xnai_proto::serve::probe(addr, service, PROBE_TIMEOUT).await?;
        anyhow::ensure!(serving, "{addr} is not SERVING (service {service:?})");
        return Ok(());
    }
    let data_dir = args
        .data_dir
        .ok_or_else(|| anyhow::anyhow!("missing --data-dir DIR"))?;
    let token = args
        .token
        .ok_or_else(|| anyhow::anyhow!("missing cluster token: pass --token or set XNAI_TOKEN"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = HeadConfig {
        id: args.id,
        listen: args.listen,
        listen_fd: args.listen_fd,
        data_dir,
        token,
        addr_file: args.addr_file,
        max_pending_tasks: args.max_pending_tasks,
        worker_lease: std::time::Duration::from_millis(args.worker_lease_ms.max(100)),
        raft: RaftConfig {
            id: args.id,
            cluster_id: args.cluster_id,
            peers: args.peers,
            join: args.join,
            snapshot_every: args.snapshot_every,
            tick: std::time::Duration::from_millis(args.tick_ms.max(1)),
            election_tick: args.election_tick,
            heartbeat_tick: args.heartbeat_tick,
            max_snapshot_bytes: args.max_snapshot_bytes,
        },
    };
    xnai_head::run(config, shutdown_signal()).await?;
    Ok(())
}

/// How often the head hands free heap pages back to the OS.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Issue 14: the head's RSS grew with the tasks it had seen although its state stayed
/// bounded. glibc kept the freed memory: half of the heap was free (`malloc_stats`), in the
/// thread arenas that multi-MiB buffers (snapshot encoding, sled rewrites) come from under
/// `tune_for_object_streams`, and one `malloc_trim(0)` took RSS from 97 to 56 MiB with every
/// structure in place (docs/BENCHMARKS.md, "The long soak"). A thread trims every 10 s;
/// a trim walks the arenas and costs a few milliseconds.
fn return_free_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim only returns free pages to the OS; it takes the
                    // allocator's own locks and has no memory-safety preconditions.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("xnai-head: no malloc-trim thread ({e}); RSS may keep freed memory");
        }
    }
}
