//! `xnai up` / `xnai down`: a local cluster of `xnai-head` and `xnai-worker` child processes
//! sharing a data dir. `up` reuses the dir's token and head ports, so a restarted cluster keeps
//! its control state and address; `down` stops what `cluster.json` records and frees the arenas.

pub mod files;
mod heads;
pub mod procs;
pub mod sizing;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use files::{ClusterFile, DataDir, WorkerRecord};
use procs::{Child, StopOutcome, StopTarget};
use xnai_sdk::{Client, ClientConfig};

/// How long `up` waits for the whole cluster to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What `xnai up` was asked for.
#[derive(Clone, Debug)]
pub struct UpConfig {
    /// Number of head replicas (1, or 3 or 5 for a Raft group).
    pub heads: usize,
    /// Number of workers.
    pub workers: usize,
    /// The data dir.
    pub data_dir: PathBuf,
    /// Arena capacity per worker.
    pub arena_bytes: u64,
    /// Spill directory bound per worker, in `DIR/spill/worker-N` (`None`: 4 x the arena; 0:
    /// no spilling).
    pub spill_bytes: Option<u64>,
    /// CPUs each worker offers (`None`: its share of the host's cores, see [`sizing`]).
    pub worker_cpus: Option<f64>,
    /// Memory each worker offers (`None`: its share of the host's available memory).
    pub worker_memory: Option<u64>,
}

/// A started cluster, as `xnai up` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct UpReport {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Head addresses (`host:port`).
    pub heads: Vec<String>,
    /// Workers started (each with the CPUs and memory it offers).
    pub workers: Vec<WorkerRecord>,
    /// The cluster token.
    pub token: String,
    /// Set when the host had too little memory to share (see [`sizing::divide`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing_warning: Option<String>,
}

/// A running cluster: its children and what to write back when it stops.
pub struct Cluster {
    dir: DataDir,
    file: ClusterFile,
    children: Vec<Child>,
    /// What was started.
    pub report: UpReport,
}

/// Where `xnai-head` and `xnai-worker` are: $XNAI_BIN_DIR, else next to this executable.
fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XNAI_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("finding the xnai executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the xnai executable has no parent directory")
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        bail!(
            "{name} not found in {} (build it with `cargo build --bins`, or set XNAI_BIN_DIR)",
            dir.display()
        );
    }
    Ok(p)
}

/// Refuses to start over a cluster that still runs from this dir.
fn check_not_running(previous: &Option<ClusterFile>, dir: &Path) -> Result<()> {
    let Some(prev) = previous else { return Ok(()) };
    let pids = prev.heads.iter().map(|h| (format!("head-{}", h.id), h.pid));
    let pids = pids.chain(
        prev.workers
            .iter()
            .map(|w| (format!("worker-{}", w.index), w.pid)),
    );
    for (name, pid) in pids {
        if let Some(pid) = pid.filter(|p| procs::is_ours(*p)) {
            bail!(
                "a cluster is already running from {} ({name} is pid {pid}): run `xnai down --data-dir {}` first",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Starts the cluster and waits until the head answers and every worker is alive. If anything
/// fails, whatever was started is stopped again and the error says which child failed and why.
pub async fn up(cfg: &UpConfig) -> Result<Cluster> {
    if cfg.heads == 0 {
        bail!("--heads must be at least 1");
    }
    let share = sizing::divide(
        &sizing::host_resources(),
        &sizing::SizingRequest {
            workers: cfg.workers,
            heads: cfg.heads,
            arena_bytes: cfg.arena_bytes,
            cpus: cfg.worker_cpus,
            memory_bytes: cfg.worker_memory,
        },
    )?;
    let bins = bin_dir()?;
    let (head_bin, worker_bin) = (binary(&bins, "xnai-head")?, binary(&bins, "xnai-worker")?);
    let dir = DataDir::new(&cfg.data_dir);
    for d in [dir.root.clone(), dir.run_dir(), dir.logs_dir()] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let previous = ClusterFile::load(&dir)?;
    check_not_running(&previous, &dir.root)?;
    if let Some(prev) = previous.as_ref().filter(|p| !p.heads.is_empty())
        && prev.heads.len() != cfg.heads
    {
        bail!(
            "{} holds a cluster of {} head(s): start it with --heads {} (or use a new --data-dir)",
            dir.root.display(),
            prev.heads.len(),
            prev.heads.len()
        );
    }
    let token = files::load_or_create_token(&dir)?;
    let cluster_id = previous
        .as_ref()
        .map(|p| p.cluster_id.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("xnai-{:016x}", rand::random::<u64>()));
    let mut cluster = Cluster {
        file: ClusterFile {
            version: 1,
            arena_bytes: cfg.arena_bytes,
            cluster_id,
            ..Default::default()
        },
        report: UpReport {
            data_dir: dir.root.clone(),
            heads: vec![],
            workers: vec![],
            token: token.clone(),
            sizing_warning: share.warning.clone(),
        },
        children: Vec::new(),
        dir,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let started = cluster
        .start(
            cfg,
            &share,
            previous.as_ref(),
            Binaries {
                head: &head_bin,
                worker: &worker_bin,
            },
            &token,
            deadline,
        )
        .await;
    if let Err(e) = started {
        cluster.stop().await;
        return Err(e);
    }
    let text = cluster.file.heads_text();
    files::write_atomic(&cluster.dir.heads_file(), text.as_bytes(), 0o644)?;
    cluster.file.save(&cluster.dir)?;
    Ok(cluster)
}

/// The node binaries `xnai up` starts.
#[derive(Clone, Copy)]
struct Binaries<'a> {
    head: &'a Path,
    worker: &'a Path,
}

impl Cluster {
    async fn start(
        &mut self,
        cfg: &UpConfig,
        share: &sizing::WorkerShare,
        previous: Option<&ClusterFile>,
        bins: Binaries<'_>,
        token: &str,
        deadline: Instant,
    ) -> Result<()> {
        let worker_bin = bins.worker;
        self.start_heads(cfg.heads, previous, bins.head, token, deadline)
            .await?;
        let heads = self.report.heads.join(",");
        for index in 1..=cfg.workers {
            let name = format!("worker-{index}");
            let addr_file = self.dir.addr_file(&name);
            let _ = std::fs::remove_file(&addr_file);
            let arena_dir = PathBuf::from(format!(
                "/dev/shm/xnai-arena-{:016x}",
                rand::random::<u64>()
            ));
            let spill_bytes = cfg.spill_bytes.unwrap_or(cfg.arena_bytes.saturating_mul(4));
            let spill_dir = self.dir.root.join("spill").join(&name);
            let mut args: Vec<String> = vec![
                "--head".into(),
                heads.clone(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--arena-bytes".into(),
                cfg.arena_bytes.to_string(),
                "--arena-dir".into(),
                arena_dir.display().to_string(),
                "--addr-file".into(),
                addr_file.display().to_string(),
                "--cpus".into(),
                share.cpus.to_string(),
                "--memory-bytes".into(),
                share.memory_bytes.to_string(),
            ];
            if spill_bytes > 0 {
                args.extend(["--spill-dir".into(), spill_dir.display().to_string()]);
                args.extend(["--spill-bytes".into(), spill_bytes.to_string()]);
            }
            let log = self.dir.log_file(&name);
            let child = Child::spawn(&name, worker_bin, &args, token, &log, None)?;
            let pid = child.pid;
            self.children.push(child);
            self.file.workers.push(WorkerRecord {
                index,
                address: String::new(),
                pid: Some(pid),
                arena_dir,
                log,
                cpus: share.cpus,
                memory_bytes: share.memory_bytes,
            });
        }
        for (i, w) in self.file.workers.iter_mut().enumerate() {
            let child = &mut self.children[cfg.heads + i];
            w.address = child
                .wait_addr_file(&self.dir.addr_file(&child.name), deadline)
                .await?;
        }
        self.report.workers = self.file.workers.clone();
        self.wait_ready(token, deadline).await
    }

    /// Polls ClusterStatus until every started worker is listed alive.
    async fn wait_ready(&mut self, token: &str, deadline: Instant) -> Result<()> {
        let want: Vec<String> = self
            .file
            .workers
            .iter()
            .map(|w| w.address.clone())
            .collect();
        let mut last: String;
        loop {
            for c in &mut self.children {
                if let Some(status) = c.exited() {
                    return Err(c.died(status, "during startup"));
                }
            }
            let config = ClientConfig::new(self.report.heads.clone(), token);
            match Client::connect(config).await {
                Ok(client) => match client.status().await {
                    Ok(s) => {
                        let alive = s
                            .workers
                            .iter()
                            .filter(|w| w.state == "alive" && want.contains(&w.address));
                        let n = alive.count();
                        if n == want.len() {
                            return Ok(());
                        }
                        last = format!("{n} of {} workers alive", want.len());
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                bail!(
                    "cluster not ready after {} s: {last} (logs in {})",
                    READY_TIMEOUT.as_secs(),
                    self.dir.logs_dir().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Children that exited since the last call, as one-line messages.
    pub fn exited_children(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.children.retain_mut(|c| match c.exited() {
            Some(status) => {
                out.push(c.died(status, "").to_string());
                false
            }
            None => true,
        });
        out
    }

    /// Stops every child (workers first), removes the arenas and records the cluster as stopped.
    pub async fn stop(mut self) -> Vec<StopOutcome> {
        let mut targets: Vec<StopTarget> =
            self.children.drain(..).map(Child::into_target).collect();
        targets.reverse();
        let outcomes = procs::stop_all(targets).await;
        remove_arenas(&self.file.workers);
        if !self.file.heads.is_empty() {
            mark_stopped(&mut self.file);
            if let Err(e) = self.file.save(&self.dir) {
                tracing::warn!("cannot record the stopped cluster: {e:#}");
            }
        }
        outcomes
    }
}

fn mark_stopped(file: &mut ClusterFile) {
    file.heads.iter_mut().for_each(|h| h.pid = None);
    file.workers.iter_mut().for_each(|w| w.pid = None);
}

/// Removes the workers' arena dirs (only dirs named like ours), returning those removed.
fn remove_arenas(workers: &[WorkerRecord]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for w in workers {
        let ours = w
            .arena_dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("xnai-arena-"));
        if ours && w.arena_dir.exists() {
            match std::fs::remove_dir_all(&w.arena_dir) {
                Ok(()) => removed.push(w.arena_dir.clone()),
                Err(e) => tracing::warn!("cannot remove {}: {e}", w.arena_dir.display()),
            }
        }
    }
    removed
}

/// What `xnai down` did.
#[derive(Clone, Debug, Serialize)]
pub struct DownReport {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Each recorded process and how it ended.
    pub stopped: Vec<StopOutcome>,
    /// Arena dirs removed (workers normally remove their own).
    pub removed_arenas: Vec<PathBuf>,
}

/// Stops the cluster recorded in `DIR/cluster.json`; succeeds when nothing runs.
pub async fn down(data_dir: &Path) -> Result<DownReport> {
    let dir = DataDir::new(data_dir);
    let mut report = DownReport {
        data_dir: data_dir.to_path_buf(),
        stopped: vec![],
        removed_arenas: vec![],
    };
    let Some(mut file) = ClusterFile::load(&dir)? else {
        return Ok(report);
    };
    let mut targets = Vec::new();
    for w in &file.workers {
        if let Some(pid) = w.pid {
            targets.push(StopTarget {
                name: format!("worker-{}", w.index),
                pid,
                child: None,
            });
        }
    }
    for h in &file.heads {
        if let Some(pid) = h.pid {
            targets.push(StopTarget {
                name: format!("head-{}", h.id),
                pid,
                child: None,
            });
        }
    }
    // Workers first, so they can still reach the head while shutting down.
    let (workers, heads): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .partition(|t| t.name.starts_with("worker"));
    report.stopped = procs::stop_all(workers).await;
    report.stopped.extend(procs::stop_all(heads).await);
    report.removed_arenas = remove_arenas(&file.workers);
    for w in &file.workers {
        let _ = std::fs::remove_file(dir.addr_file(&format!("worker-{}", w.index)));
    }
    for h in &file.heads {
        let _ = std::fs::remove_file(dir.addr_file(&format!("head-{}", h.id)));
    }
    mark_stopped(&mut file);
    file.save(&dir)?;
    Ok(report)
}
