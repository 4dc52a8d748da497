//! Targets: where the nemesis's faults land. [`Target`] offers the same operations on the local
//! cluster (child processes behind our proxies) and on the compose deployment (containers), so
//! the nemesis and the workload do not care which one runs.

pub mod compose;
pub mod local;
mod node;

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::{RunConfig, TargetKind};
use crate::error::{ChaosError, Result};
use crate::proxy::LinkMode;

/// The cluster under test.
pub enum Target {
    /// Child processes behind fault-injecting proxies.
    Local(local::LocalCluster),
    /// The compose deployment.
    Compose(compose::ComposeCluster),
}

/// Slow-link parameters: latency added per chunk and chance of a connection reset per chunk.
pub const SLOW_DELAY: Duration = Duration::from_millis(150);
/// See [`SLOW_DELAY`].
pub const SLOW_RESET: f64 = 0.02;

impl Target {
    /// Start (or bring up) the cluster `cfg` names.
    pub async fn start(cfg: &RunConfig) -> Result<Self> {
        Ok(match cfg.target {
            TargetKind::Local => Target::Local(local::LocalCluster::start(cfg).await?),
            TargetKind::Compose => {
                let repo = cfg.repo_dir.clone();
                Target::Compose(
                    tokio::task::spawn_blocking(move || compose::ComposeCluster::start(repo))
                        .await
                        .map_err(|e| ChaosError::Cluster(e.to_string()))??,
                )
            }
        })
    }

    /// Head addresses clients use.
    pub fn heads(&self) -> Vec<String> {
        match self {
            Target::Local(c) => c.heads.clone(),
            Target::Compose(c) => c.heads.clone(),
        }
    }

    /// The cluster token.
    pub fn token(&self) -> String {
        match self {
            Target::Local(c) => c.token().to_string(),
            Target::Compose(c) => c.token().to_string(),
        }
    }

    /// Head node names (`head-1`..).
    pub fn head_names(&self) -> Vec<String> {
        match self {
            Target::Local(c) => c.head_names(),
            Target::Compose(_) => (1..=3).map(|i| format!("head-{i}")).collect(),
        }
    }

    /// Worker node names (`worker-1`..).
    pub fn worker_names(&self) -> Vec<String> {
        match self {
            Target::Local(c) => c.workers(),
            Target::Compose(_) => (1..=3).map(|i| format!("worker-{i}")).collect(),
        }
    }

    /// Whether workers carry the `chaos-node=NAME` label (arena-fill targets one worker).
    pub fn labelled_workers(&self) -> bool {
        matches!(self, Target::Local(_))
    }

    /// The address a worker advertises (what `ClusterStatus` lists).
    pub fn worker_address(&self, name: &str) -> Option<String> {
        match self {
            Target::Local(c) => c.worker_address(name),
            Target::Compose(_) => {
                let n: u16 = name.rsplit_once('-')?.1.parse().ok()?;
                let base: u16 = std::env::var("XNAI_PORT_BASE")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(17000);
                Some(format!("127.0.0.1:{}", base + 100 + n))
            }
        }
    }

    /// SIGKILL a node.
    pub async fn kill(&mut self, name: &str) -> Result<()> {
        match self {
            Target::Local(c) => c.kill(name).await,
            Target::Compose(c) => c.signal(name, "KILL"),
        }
    }

    /// Start a killed node again.
    pub fn restart(&mut self, name: &str) -> Result<()> {
        match self {
            Target::Local(c) => c.restart(name),
            Target::Compose(c) => c.restart(name),
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT a node.
    pub fn pause(&mut self, name: &str, pause: bool) -> Result<()> {
        match self {
            Target::Local(c) => c.signal(
                name,
                if pause {
                    Signal::SIGSTOP
                } else {
                    Signal::SIGCONT
                },
            ),
            Target::Compose(c) => c.signal(name, if pause { "STOP" } else { "CONT" }),
        }
    }

    /// Cut a node off (`Some(Cut)`), slow its links (`Some(Slow)`), or heal it (`None`).
    /// Returns false when the target cannot do it (slow links on compose).
    pub fn links(&mut self, name: &str, mode: LinkMode) -> Result<bool> {
        match self {
            Target::Local(c) => {
                c.set_links(name, mode);
                Ok(true)
            }
            Target::Compose(c) => match mode {
                LinkMode::Up => {
                    c.heal_network();
                    Ok(true)
                }
                LinkMode::Cut => c.partition(name).map(|_| true),
                LinkMode::Slow { .. } => Ok(false),
            },
        }
    }

    /// Nodes that died without being killed (local target only).
    pub fn crashed(&mut self) -> Vec<String> {
        match self {
            Target::Local(c) => c.crashed(),
            Target::Compose(_) => vec![],
        }
    }

    /// Heal everything: links up, paused nodes resumed, dead nodes restarted.
    pub fn heal_all(&mut self) -> Result<()> {
        match self {
            Target::Local(c) => c.heal_all(),
            Target::Compose(c) => {
                c.heal_all();
                Ok(())
            }
        }
    }

    /// Stop the cluster; the local target keeps its run directory when `keep`.
    pub async fn stop(self, keep: bool) -> Option<PathBuf> {
        match self {
            Target::Local(c) => c.stop(keep).await,
            Target::Compose(c) => {
                let _ = tokio::task::spawn_blocking(move || c.stop()).await;
                None
            }
        }
    }
}
