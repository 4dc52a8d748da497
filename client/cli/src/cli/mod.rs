//! The `xnai` command line: clap definitions and dispatch. Each command prints readable text,
//! or one JSON document with `--json`; any failure becomes one `error: ...` line and exit code 1.

mod args;
mod commands;
mod heads;
mod inference;
mod output;
mod rag;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use args::parse_task_arg;

/// Command line of `xnai`.
#[derive(Parser, Debug)]
#[command(
    name = "xnai",
    version,
    about = "xnai: a Ray-like actor cluster",
    propagate_version = true
)]
pub struct Cli {
    /// Head address(es), comma separated (host:port[,host:port...]).
    #[arg(long, env = "XNAI_HEAD", global = true, value_delimiter = ',')]
    pub head: Vec<String>,
    /// Cluster token (`xnai up` prints it).
    #[arg(long, env = "XNAI_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `xnai` commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a local cluster (heads and workers as child processes).
    Up {
        /// Number of head replicas (1, or 3 or 5 for a Raft group).
        #[arg(long, default_value_t = 1)]
        heads: usize,
        /// Number of workers.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Directory for the token, head data, logs and cluster.json.
        #[arg(long)]
        data_dir: PathBuf,
        /// Arena capacity per worker (e.g. 1GiB, 512M).
        #[arg(long, default_value = "1GiB", value_parser = parse_size)]
        arena_bytes: u64,
        /// Spill directory bound per worker, under DIR/spill (default: 4 x --arena-bytes; 0 turns
        /// spilling off).
        #[arg(long, env = "XNAI_SPILL_BYTES", value_parser = parse_size)]
        spill_bytes: Option<u64>,
        /// CPUs each worker offers (default: host cores / workers, rounded down, at least 1).
        #[arg(long, env = "XNAI_WORKER_CPUS")]
        worker_cpus: Option<f64>,
        /// Memory each worker offers (e.g. 2GiB; default: available memory, less the arenas
        /// and 256 MiB per head, divided among the workers).
        #[arg(long, env = "XNAI_WORKER_MEMORY", value_parser = parse_size)]
        worker_memory: Option<u64>,
        /// Return once the cluster is ready instead of staying in the foreground.
        #[arg(long)]
        detach: bool,
    },
    /// Stop the local cluster started from DIR and remove its arenas.
    Down {
        /// The data dir given to `xnai up`.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Heads, workers and counts.
    Status,
    /// Tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Submit a task and print its result.
    Run {
        #[command(flatten)]
        task: TaskSpec,
        /// Give up after this many seconds (default: wait until done).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Objects.
    Object {
        #[command(subcommand)]
        command: ObjectCommand,
    },
    /// Actors.
    Actor {
        #[command(subcommand)]
        command: ActorCommand,
    },
    /// Head replicas (the Raft group).
    Head {
        #[command(subcommand)]
        command: HeadCommand,
    },
    /// Stream a completion from an inference actor (text on stdout, stats on stderr).
    Generate(inference::GenerateArgs),
    /// Embed texts with an inference actor; prints the vectors as JSON.
    Embed(inference::EmbedArgs),
    /// Memory estimate of a GGUF model, and the tmpfs and container sizes for a worker.
    Plan(inference::PlanArgs),
    /// Retrieval indexes: add files, stats.
    Index {
        #[command(subcommand)]
        command: rag::IndexCommand,
    },
    /// Search a retrieval actor (vector, bm25 or hybrid).
    Search(rag::SearchArgs),
    /// Retrieve passages, generate an answer from them, print it with its sources.
    Ask(rag::AskArgs),
}

/// `xnai head ...`.
#[derive(Subcommand, Debug)]
pub enum HeadCommand {
    /// Add a head started with `xnai-head --join`; prints its id.
    Add {
        /// The new head's host:port.
        address: String,
    },
    /// Remove a head from the group.
    Remove {
        /// The head's id.
        id: u64,
    },
    /// List the heads with role, term, commit index and pid.
    List,
}

/// A function, its arguments and retries.
#[derive(clap::Args, Debug)]
pub struct TaskSpec {
    /// Function name (echo, sleep, fill, digest, ...).
    pub function: String,
    /// Arguments (UTF-8 text); `@ID` passes object ID by reference.
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
    /// Re-runs after a system failure (default 3).
    #[arg(long)]
    pub max_retries: Option<u32>,
}

/// `xnai task ...`.
#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Submit a task; prints its return object id.
    Submit(TaskSpec),
}

/// `xnai object ...`.
#[derive(Subcommand, Debug)]
pub enum ObjectCommand {
    /// Store a file as an object; prints its id.
    Put {
        /// The file.
        file: PathBuf,
    },
    /// Write an object's bytes to stdout or a file.
    Get {
        /// Object id.
        id: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Give up after this many seconds (default: wait until ready).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Size, state, locations and producing task of an object.
    Info {
        /// Object id.
        id: String,
    },
    /// Free objects now: their copies are deleted once no pending task or lineage needs them.
    Free {
        /// Object ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `xnai actor ...`.
#[derive(Subcommand, Debug)]
pub enum ActorCommand {
    /// Create an actor; prints its id.
    Create {
        /// Actor class (counter, ...).
        class: String,
        /// Unique name.
        #[arg(long)]
        name: Option<String>,
        /// Restarts after its worker dies (-1 = unlimited).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        max_restarts: i32,
        /// Constructor arguments (after `--`); `@ID` passes an object by reference.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Call a method; prints its result.
    Call {
        /// Actor name or id.
        name: String,
        /// Method name.
        method: String,
        /// Arguments (UTF-8 text).
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// List actors with their state and worker.
    List,
    /// Kill an actor; its name becomes free.
    Kill {
        /// Actor name or id.
        name: String,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    xnai_proto::units::parse_size(s).map_err(|e| e.to_string())
}

/// Runs `xnai` with the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints `error: ...` as one line on stderr; returns exit code 1.
fn fail(e: &anyhow::Error) -> ExitCode {
    let text = format!("{e:#}").replace('\n', " ");
    eprintln!("error: {text}");
    ExitCode::from(1)
}
