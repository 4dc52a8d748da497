//! xnai worker: runs tasks from a function registry, hosts actix actors and keeps objects in a
//! tmpfs arena, serving the `Worker` gRPC service and reporting to the head.
//!
//! `main.rs` only parses flags; [`run`] (or [`run_with`] for a worker with user functions and
//! classes) does everything else. Modules: `arena`, `functions`, `actors`, `hosts`, `executor`,
//! `head_link`, `service`, with `convert` the only place protobuf meets domain types.

pub mod actors;
pub mod arena;
pub mod convert;
pub mod error;
pub mod executor;
pub mod functions;
pub mod head_link;
pub mod health;
pub mod hosts;
pub mod inference_actor;
pub mod retrieval_actor;
pub mod server;
pub mod service;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{Result, WorkerError};
pub use server::{run, run_with};

use arena::ArenaConfig;
use arena::pressure::PressureThresholds;

/// Everything a worker process needs to know to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Head addresses (`host:port`), tried in order.
    pub heads: Vec<String>,
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// An inherited listening socket to serve on instead of binding `listen`
    /// ([`xnai_proto::handover::adopt`]).
    pub listen_fd: Option<std::os::fd::RawFd>,
    /// Address to give the head; default: the bound address (127.0.0.1 for an unspecified ip).
    pub advertise: Option<String>,
    /// The cluster token.
    pub token: String,
    /// Arena directory and capacity.
    pub arena: ArenaConfig,
    /// CPUs offered.
    pub cpus: f64,
    /// Memory offered in bytes.
    pub memory_bytes: u64,
    /// Labels offered.
    pub labels: HashMap<String, String>,
    /// Where to write `host:port\n` once bound and registered.
    pub addr_file: Option<PathBuf>,
    /// Memory pressure thresholds for heartbeats.
    pub pressure: PressureThresholds,
    /// Threads running actors.
    pub actor_threads: usize,
    /// Bytes of llama.cpp models the worker keeps resident for its `inference` actors.
    pub model_budget_bytes: u64,
    /// 0-CPU tasks (and tasks that do not say) run at once at most
    /// ([`executor::DEFAULT_MAX_ZERO_CPU_TASKS`] by default).
    pub max_zero_cpu_tasks: usize,
    /// Memory every built-in `fill` running at once shares (capped at the arena capacity).
    pub builtin_memory_bytes: u64,
    /// How long a `PutObject` stream may send nothing before it is failed and its reservation
    /// released ([`arena::DEFAULT_PUT_IDLE`] by default).
    pub put_idle_timeout: Duration,
}

/// Parse `k=v,k=v` labels.
pub fn parse_labels(s: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            WorkerError::Config(format!("bad label {part:?}: expected key=value"))
        })?;
        if k.trim().is_empty() {
            return Err(WorkerError::Config(format!(
                "bad label {part:?}: empty key"
            )));
        }
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// A future that never resolves, for callers without a shutdown signal.
pub fn never() -> impl Future<Output = ()> + Send + 'static {
    std::future::pending()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse() {
        let l = parse_labels("gpu=a100, zone=eu").unwrap();
        assert_eq!(l["gpu"], "a100");
        assert_eq!(l["zone"], "eu");
        assert!(parse_labels("").unwrap().is_empty());
        assert!(parse_labels("novalue").is_err());
    }
}
