//! The local target: a cluster of `xnai-head` and `xnai-worker` child processes (the same
//! flags `xnai up` gives them) wired through fault-injecting proxies this process owns:
//! clients and workers reach head `i` through its public proxy, head `i` reaches head `j`
//! through its own link proxy (`--peers` differs per head), worker `w` reaches the heads through
//! its own link proxies, and everyone reaches worker `w` through its advertised proxy. A
//! partition of a node cuts every proxy into it and every link out of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use xnai_sdk::{Client, ClientConfig};

use super::node::Node;
use crate::config::RunConfig;
use crate::error::{ChaosError, Result};
use crate::proxy::{LinkMode, Proxy};
use crate::rng::Rng;

/// How long the cluster may take to start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A proxy and the nodes it touches: `into` is the node it forwards to, `from` the node that
/// uses it (None for the public proxies everyone uses).
struct Link {
    proxy: Proxy,
    into: String,
    from: Option<String>,
}

/// The running local cluster.
pub struct LocalCluster {
    dir: tempfile::TempDir,
    token: String,
    nodes: Vec<Node>,
    links: Vec<Link>,
    /// Public head addresses (the proxies clients use), in head id order.
    pub heads: Vec<String>,
}

/// Proxies bind a port of their own choosing: no window for another process to take it.
const ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A free port for a node whose address its peers must know before it starts (as `xnai up`
/// does for heads), bound: the node is handed the listener when it starts.
fn free_port() -> Result<(SocketAddr, std::net::TcpListener)> {
    let l = xnai_proto::handover::bind_for_child()
        .map_err(|e| ChaosError::io("choosing a free port", e))?;
    let addr = l
        .local_addr()
        .map_err(|e| ChaosError::io("choosing a free port", e))?;
    Ok((addr, l))
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        return Err(ChaosError::Config(format!(
            "{name} not found in {} (build with `cargo build --workspace --bins`, or pass --bin-dir / XNAI_BIN_DIR)",
            dir.display()
        )));
    }
    Ok(p)
}

impl LocalCluster {
    /// Start `cfg.heads` heads and `cfg.workers` workers behind proxies and wait until every
    /// worker is alive.
    pub async fn start(cfg: &RunConfig) -> Result<Self> {
        let head_bin = binary(&cfg.bin_dir, "xnai-head")?;
        let core_limit = super::node::allow_core_dumps();
        tracing::debug!(core_limit, "core-file limit for the nodes");
        let worker_bin = binary(&cfg.bin_dir, "xnai-worker")?;
        let dir = tempfile::Builder::new()
            .prefix("xnai-chaos-")
            .tempdir()
            .map_err(|e| ChaosError::io("creating the run directory", e))?;
        let mut rng = Rng::derive(cfg.seed, "local-target");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let token = format!("{:016x}{:016x}", rng.next_u64(), nanos as u64);
        let mut links = Vec::new();
        let (head_real, head_listeners): (Vec<SocketAddr>, Vec<_>) = (0..cfg.heads)
            .map(|_| free_port())
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let head_name = |i: usize| format!("head-{}", i + 1);
        let mut heads = Vec::new();
        for (i, real) in head_real.iter().enumerate() {
            let p = Proxy::start(ANY, *real, rng.next_u64()).await?;
            heads.push(p.listen.to_string());
            links.push(Link {
                proxy: p,
                into: head_name(i),
                from: None,
            });
        }
        let mut nodes = Vec::new();
        let cluster_id = format!("chaos-{:08x}", rng.next_u64() as u32);
        for (i, listener) in head_listeners.into_iter().enumerate() {
            let mut peers = Vec::new();
            for (j, other) in head_real.iter().enumerate() {
                let addr = if i == j {
                    heads[i].clone()
                } else {
                    let p = Proxy::start(ANY, *other, rng.next_u64()).await?;
                    let a = p.listen.to_string();
                    links.push(Link {
                        proxy: p,
                        into: head_name(j),
                        from: Some(head_name(i)),
                    });
                    a
                };
                peers.push(format!("{}={addr}", j + 1));
            }
            let data = dir.path().join(head_name(i));
            let mut args = vec![
                "--id".to_string(),
                (i + 1).to_string(),
                "--data-dir".into(),
                data.display().to_string(),
                "--cluster-id".into(),
                cluster_id.clone(),
                "--worker-lease-ms".into(),
                cfg.worker_lease_ms.to_string(),
            ];
            if cfg.heads > 1 {
                args.extend(["--peers".into(), peers.join(",")]);
            }
            nodes.push(Node::new(
                head_name(i),
                head_bin.clone(),
                args,
                cfg.head_env.clone(),
                dir.path().join(format!("{}.log", head_name(i))),
                false,
                Some(listener),
            ));
        }
        for w in 0..cfg.workers {
            let name = format!("worker-{}", w + 1);
            let (real, listener) = free_port()?;
            let public = Proxy::start(ANY, real, rng.next_u64()).await?;
            let advertise = public.listen.to_string();
            links.push(Link {
                proxy: public,
                into: name.clone(),
                from: None,
            });
            let mut to_heads = Vec::new();
            for (i, h) in head_real.iter().enumerate() {
                let p = Proxy::start(ANY, *h, rng.next_u64()).await?;
                to_heads.push(p.listen.to_string());
                links.push(Link {
                    proxy: p,
                    into: head_name(i),
                    from: Some(name.clone()),
                });
            }
            let args = vec![
                "--head".to_string(),
                to_heads.join(","),
                "--advertise".into(),
                advertise,
                "--arena-bytes".into(),
                cfg.arena_bytes.to_string(),
                "--cpus".into(),
                "4".into(),
                "--labels".into(),
                format!("chaos-node={name}"),
                // As `xnai up` does: a full arena spills to disk (4x the arena), so a rebuild or a
                // task output gets room instead of failing on an arena of live objects.
                "--spill-dir".into(),
                dir.path()
                    .join(format!("{name}-spill"))
                    .display()
                    .to_string(),
            ];
            let log = dir.path().join(format!("{name}.log"));
            nodes.push(Node::new(
                name,
                worker_bin.clone(),
                args,
                vec![],
                log,
                true,
                Some(listener),
            ));
        }
        let mut cluster = Self {
            dir,
            token,
            nodes,
            links,
            heads,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// The cluster token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Where logs and head data live.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Names of the worker nodes.
    pub fn workers(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_worker)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Names of the head nodes.
    pub fn head_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !n.is_worker)
            .map(|n| n.name.clone())
            .collect()
    }

    /// The address worker `name` advertises (its public proxy).
    pub fn worker_address(&self, name: &str) -> Option<String> {
        let n = self.nodes.iter().find(|n| n.name == name && n.is_worker)?;
        let i = n.args.iter().position(|a| a == "--advertise")?;
        n.args.get(i + 1).cloned()
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| ChaosError::Config(format!("no node {name}")))
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let token = self.token.clone();
        self.nodes[i].spawn(&token)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let want = self.workers().len();
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(m) = self.nodes.iter_mut().find_map(Node::exited) {
                return Err(ChaosError::Cluster(format!("during startup: {m}")));
            }
            let mut cfg = ClientConfig::new(self.heads.clone(), self.token.clone());
            cfg.session_lease = None;
            match Client::connect(cfg).await {
                Ok(c) => match c.status().await {
                    Ok(s) => {
                        let alive = s.workers.iter().filter(|w| w.state == "alive").count();
                        if alive >= want {
                            return Ok(());
                        }
                        last = format!("{alive} of {want} workers alive");
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ChaosError::Cluster(format!(
            "not ready after {READY_TIMEOUT:?}: {last} (logs in {})",
            self.dir.path().display()
        )))
    }

    /// Send `signal` to a node.
    pub fn signal(&self, name: &str, signal: Signal) -> Result<()> {
        self.nodes[self.index(name)?].signal(signal)
    }

    /// SIGKILL a node and reap it (its arena is removed, as the volatile tmpfs would be).
    pub async fn kill(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        self.nodes[i].kill().await
    }

    /// Start a killed node again with the same flags (a head keeps its data dir).
    pub fn restart(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        if self.nodes[i].running() {
            return Ok(());
        }
        self.spawn(i)
    }

    /// Set every proxy into `name` and every link out of it to `mode`.
    pub fn set_links(&self, name: &str, mode: LinkMode) {
        for l in &self.links {
            if l.into == name || l.from.as_deref() == Some(name) {
                l.proxy.set(mode);
            }
        }
    }

    /// Node processes that exited on their own (not killed by the nemesis).
    pub fn crashed(&mut self) -> Vec<String> {
        self.nodes.iter_mut().filter_map(Node::exited).collect()
    }

    /// Heal every link, resume paused nodes, restart dead ones.
    pub fn heal_all(&mut self) -> Result<()> {
        for l in &self.links {
            l.proxy.set(LinkMode::Up);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].running() {
                let _ = self.nodes[i].signal(Signal::SIGCONT);
            } else {
                self.spawn(i)?;
            }
        }
        Ok(())
    }

    /// Stop everything (SIGTERM, then SIGKILL after a grace period) and remove the arenas.
    /// `keep` leaves the run directory (logs, head data) in place and returns its path.
    pub async fn stop(mut self, keep: bool) -> Option<PathBuf> {
        self.nodes.iter().for_each(Node::terminate);
        for n in &mut self.nodes {
            n.reap(Duration::from_secs(5)).await;
        }
        if keep { Some(self.dir.keep()) } else { None }
    }
}
