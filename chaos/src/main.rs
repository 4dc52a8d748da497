//! The `xnai-chaos` binary: parses flags and calls [`xnai_chaos::run`]; prints the human table
//! and exits 0 when no checker found a violation, 1 when one did, 2 when the run itself failed.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use xnai_chaos::config::{RunConfig, TargetKind, parse_duration, parse_nemeses};

/// xnai-chaos: fault injection and checkers for an xnai cluster.
#[derive(Debug, Parser)]
#[command(name = "xnai-chaos", version, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TargetArg {
    Local,
    Compose,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start (local) or use (compose) a cluster, run the workload under faults, check, report.
    Run {
        /// local: child processes behind fault-injecting proxies; compose: deploy/.
        #[arg(long, value_enum, default_value = "local")]
        target: TargetArg,
        /// Comma-separated: worker-kill, leader-kill, head-kill, worker-pause, partition,
        /// slow-link, arena-fill; or mix (all of them), or none.
        #[arg(long, default_value = "mix")]
        nemesis: String,
        /// Seed for the schedule and the workload; the same seed replays the same run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How long the workload runs under faults (e.g. 90s, 2m).
        #[arg(long, default_value = "90s")]
        duration: String,
        /// Where to write the JSON report (the SVG plot goes beside it).
        #[arg(long, default_value = "chaos-report.json")]
        report: PathBuf,
        /// Directory with xnai-head, xnai-worker (default: next to this executable).
        #[arg(long, env = "XNAI_BIN_DIR")]
        bin_dir: Option<PathBuf>,
        /// Concurrent workload clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Heads of the local cluster.
        #[arg(long, default_value_t = 3)]
        heads: usize,
        /// Workers of the local cluster.
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// Arena bytes per local worker.
        #[arg(long, default_value_t = 64 << 20)]
        arena_bytes: u64,
        /// TEST ONLY: start the local heads with XNAI_CHAOS_BUG=VALUE (e.g. ack-before-commit),
        /// a deliberately broken head, to prove the checkers catch it.
        #[arg(long, hide = true)]
        inject_bug: Option<String>,
        /// Keep the local run directory (node logs, head data) instead of deleting it.
        #[arg(long)]
        keep: bool,
        /// Repository root (the compose target runs deploy/up.sh and deploy/down.sh there).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Leave the operations out of the JSON report's `history` (faults and breaker
        /// transitions stay; violations keep their witnesses).
        #[arg(long)]
        omit_history: bool,
        /// Count warnings (acknowledged tasks that failed for good after using up their retry
        /// budget, inconclusive linearizability searches) as violations.
        #[arg(long)]
        strict: bool,
        /// The local heads' worker lease in ms; longer than the product default so that a
        /// paused worker's breaker opens before the worker is declared dead (docs/CHAOS.md).
        #[arg(long, default_value_t = xnai_chaos::config::DEFAULT_CHAOS_WORKER_LEASE_MS)]
        worker_lease_ms: u64,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,xnai_sdk=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("xnai-chaos: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<bool> {
    let Cmd::Run {
        target,
        nemesis,
        seed,
        duration,
        report,
        bin_dir,
        clients,
        heads,
        workers,
        arena_bytes,
        inject_bug,
        keep,
        repo,
        omit_history,
        strict,
        worker_lease_ms,
    } = Args::parse().command;
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .context("finding this executable")?
            .parent()
            .context("this executable has no directory")?
            .to_path_buf(),
    };
    let cfg = RunConfig {
        target: match target {
            TargetArg::Local => TargetKind::Local,
            TargetArg::Compose => TargetKind::Compose,
        },
        nemeses: parse_nemeses(&nemesis)?,
        seed,
        duration: parse_duration(&duration)?,
        report: report.clone(),
        bin_dir,
        clients: clients.max(1),
        heads,
        workers,
        arena_bytes,
        head_env: inject_bug
            .map(|b| vec![("XNAI_CHAOS_BUG".to_string(), b)])
            .unwrap_or_default(),
        repo_dir: repo,
        omit_history,
        strict,
        worker_lease_ms,
    };
    let r = xnai_chaos::run(cfg, keep).await?;
    print!("{}", xnai_chaos::report::table::render(&r));
    println!(
        "report: {} (plot: {})",
        report.display(),
        report.with_extension("svg").display()
    );
    if let Some(d) = &r.kept_dir {
        println!("logs kept in {d}");
    }
    Ok(r.violations.is_empty())
}
