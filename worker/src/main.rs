//! `xnai-worker`: parse flags, set up logging and signals, and call `xnai_worker::run`.
//! `xnai-worker health --addr HOST:PORT [--service NAME]` probes the standard health service
//! (exit 0 only if SERVING): the compose healthcheck.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use xnai_proto::units::parse_size;
use xnai_worker::Config;
use xnai_worker::arena::pressure::{PressureThresholds, parse_mem_total};
use xnai_worker::arena::{ArenaConfig, SpillConfig};

/// xnai worker: runs tasks, hosts actors and keeps objects in a tmpfs arena.
#[derive(Parser, Debug)]
#[command(name = "xnai-worker", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Head address(es), HOST:PORT[,HOST:PORT...].
    #[arg(long, value_delimiter = ',')]
    head: Vec<String>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve on this inherited, already-listening socket instead of binding --listen (the
    /// launcher hands ports over this way so no other process can take them first).
    #[arg(long, conflicts_with = "listen")]
    listen_fd: Option<i32>,
    /// Address to register with the head (default: the bound address).
    #[arg(long)]
    advertise: Option<String>,
    /// Cluster token.
    #[arg(long, env = "XNAI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Arena capacity (e.g. 1GiB, 64M, 500000).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    arena_bytes: u64,
    /// Arena directory (default: a fresh /dev/shm/xnai-arena-<random>).
    #[arg(long)]
    arena_dir: Option<PathBuf>,
    /// Directory on disk where primary objects go when the arena is full of them (default: no
    /// spilling). The worker's own: its spill files are removed at start and at stop, like the
    /// arena, so spilled objects do not survive a restart.
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    /// Bound on the spill directory (default with --spill-dir: 4 x --arena-bytes; 0 turns
    /// spilling off).
    #[arg(long, value_parser = parse_size)]
    spill_bytes: Option<u64>,
    /// Milliseconds a PutObject stream may send nothing before it is failed and its arena
    /// reservation released.
    #[arg(long, default_value_t = xnai_worker::arena::DEFAULT_PUT_IDLE.as_millis() as u64)]
    put_idle_timeout_ms: u64,
    /// 0-CPU tasks run at once at most (tasks asking for CPUs share --cpus).
    #[arg(long, default_value_t = xnai_worker::executor::DEFAULT_MAX_ZERO_CPU_TASKS)]
    max_zero_cpu_tasks: usize,
    /// Memory the built-in `fill` tasks running at once may take together (default: the
    /// --memory-bytes the worker offers to tasks; never more than --arena-bytes); a larger fill
    /// is refused, smaller ones wait for room.
    #[arg(long, value_parser = parse_size)]
    builtin_memory_bytes: Option<u64>,
    /// CPUs offered (default: number of cores).
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory offered (default: MemTotal).
    #[arg(long, value_parser = parse_size)]
    memory_bytes: Option<u64>,
    /// Labels, k=v,k=v.
    #[arg(long, default_value = "")]
    labels: String,
    /// Write the bound HOST:PORT here once bound and registered.
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Memory pressure fraction reported as "warning".
    #[arg(long, default_value_t = 0.85)]
    pressure_warn: f64,
    /// Memory pressure fraction reported as "critical".
    #[arg(long, default_value_t = 0.95)]
    pressure_critical: f64,
    /// Threads running actors.
    #[arg(long, default_value_t = 2)]
    actor_threads: usize,
    /// Memory for llama.cpp models resident for `inference` actors (default: half of
    /// --memory-bytes); unused models are unloaded to make room.
    #[arg(long, value_parser = parse_size)]
    model_budget: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Exit 0 if the worker's standard health service says SERVING, 1 otherwise.
    Health {
        /// HOST:PORT of the worker (or of any xnai node).
        #[arg(long)]
        addr: String,
        /// Service name: "" (the whole node, the default), xnai.v1.Worker or
        /// xnai.v1.LocalArena.
        #[arg(long, default_value = "")]
        service: String,
    },
}

fn config(cli: Cli) -> anyhow::Result<Config> {
    if cli.head.is_empty() {
        bail!("missing --head HOST:PORT");
    }
    let token = cli
        .token
        .filter(|t| !t.is_empty())
        .context("missing cluster token: pass --token or set XNAI_TOKEN")?;
    if !(0.0..=1.0).contains(&cli.pressure_warn) || !(0.0..=1.0).contains(&cli.pressure_critical) {
        bail!("--pressure-warn and --pressure-critical are fractions between 0 and 1");
    }
    let cpus = cli.cpus.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0)
    });
    let memory_bytes = match cli.memory_bytes {
        Some(m) => m,
        None => std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| parse_mem_total(&t))
            .unwrap_or(0),
    };
    let spill = match (cli.spill_dir, cli.spill_bytes) {
        (None, Some(b)) if b > 0 => bail!("--spill-bytes needs --spill-dir"),
        (Some(_), Some(0)) | (None, _) => None,
        (Some(dir), bytes) => Some(SpillConfig {
            dir,
            capacity: bytes.unwrap_or(cli.arena_bytes.saturating_mul(4)),
        }),
    };
    Ok(Config {
        heads: cli.head,
        listen: cli.listen,
        listen_fd: cli.listen_fd,
        advertise: cli.advertise,
        token,
        arena: ArenaConfig {
            dir: cli.arena_dir,
            capacity: cli.arena_bytes,
            spill,
        },
        cpus,
        memory_bytes,
        labels: xnai_worker::parse_labels(&cli.labels)?,
        addr_file: cli.addr_file,
        pressure: PressureThresholds {
            warn: cli.pressure_warn,
            critical: cli.pressure_critical,
        },
        actor_threads: cli.actor_threads,
        model_budget_bytes: cli.model_budget.unwrap_or(memory_bytes / 2),
        max_zero_cpu_tasks: cli.max_zero_cpu_tasks.max(1),
        builtin_memory_bytes: cli.builtin_memory_bytes.unwrap_or(match memory_bytes {
            0 => cli.arena_bytes,
            m => m,
        }),
        put_idle_timeout: Duration::from_millis(cli.put_idle_timeout_ms.max(1)),
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// How long a health probe may take to connect, and then to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    xnai_proto::alloc::tune_for_object_streams();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xnai-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        if let Some(Command::Health { addr, service }) = &cli.command {
            return match xnai_proto::serve::probe(addr, service, PROBE_TIMEOUT).await {
                Ok(true) => Ok(()),
                Ok(false) => bail!("{addr} is not SERVING (service {service:?})"),
                Err(e) => Err(e.into()),
            };
        }
        let config = config(cli)?;
        xnai_worker::run(config, shutdown_signal()).await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xnai-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
