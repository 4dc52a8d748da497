//! The multi-process test harness: [`start_cluster`] starts a real local cluster with the real
//! `xnai up` launcher (real `xnai-head` and `xnai-worker` processes on loopback) and tears it down
//! with `xnai down` when dropped. Tests and the benchmark binary share it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where the built binaries live: `$XNAI_BIN_DIR`, else the cargo target profile directory that
/// holds the running test executable (`target/<profile>/deps/..`).
pub fn bin_dir() -> Result<PathBuf> {
    if let Ok(d) = std::env::var("XNAI_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent().context("exe has no parent")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    for b in ["xnai", "xnai-head", "xnai-worker"] {
        if !dir.join(b).exists() {
            bail!(
                "{} not found in {}: build the binaries first (cargo build --bins) or set XNAI_BIN_DIR",
                b,
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// Options for [`start_cluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of head replicas.
    pub heads: usize,
    /// Number of workers.
    pub workers: usize,
    /// Arena capacity of each worker (a size string such as `256MiB`).
    pub arena_bytes: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heads: 1,
            workers: 2,
            arena_bytes: "256MiB".into(),
        }
    }
}

/// A running local cluster. Dropping it runs `xnai down` and removes its data directory.
pub struct Cluster {
    /// The cluster's data directory (`xnai up --data-dir`).
    pub data_dir: tempfile::TempDir,
    /// Head addresses, as written to `DIR/heads`.
    pub heads: Vec<String>,
    /// The cluster token, as written to `DIR/token`.
    pub token: String,
    bin: PathBuf,
    extra: Vec<std::process::Child>,
    extra_arenas: Vec<String>,
}

/// Start a cluster with `xnai up --detach` and wait until it is ready.
pub fn start_cluster(opts: ClusterOptions) -> Result<Cluster> {
    start_cluster_with_env(opts, &[])
}

/// A one-head cluster with one plain worker plus one started with `--labels LABELS` (work
/// that asks for those labels lands there); returns the cluster and that worker's address.
pub fn cluster_with_labelled_worker(labels: &str) -> Result<(Cluster, String)> {
    let mut c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    let address = c.add_worker(&["--labels", labels])?;
    Ok((c, address))
}

/// Like [`start_cluster`], with extra environment for `xnai up` and so for every head and
/// worker it starts (e.g. `XNAI_SNAPSHOT_EVERY`).
pub fn start_cluster_with_env(opts: ClusterOptions, env: &[(&str, &str)]) -> Result<Cluster> {
    let bin = bin_dir()?;
    let data_dir = tempfile::Builder::new().prefix("xnai-test-").tempdir()?;
    let out = Command::new(bin.join("xnai"))
        .args([
            "up",
            "--heads",
            &opts.heads.to_string(),
            "--workers",
            &opts.workers.to_string(),
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--arena-bytes", &opts.arena_bytes, "--detach"])
        .env_remove("XNAI_HEAD")
        .env_remove("XNAI_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .context("running xnai up")?;
    let mut cluster = Cluster {
        data_dir,
        heads: vec![],
        token: String::new(),
        bin,
        extra: vec![],
        extra_arenas: vec![],
    };
    if !out.status.success() {
        bail!(
            "xnai up failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let dir = cluster.data_dir.path();
    cluster.heads = std::fs::read_to_string(dir.join("heads"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    cluster.token = std::fs::read_to_string(dir.join("token"))?
        .trim()
        .to_string();
    if cluster.heads.len() != opts.heads {
        bail!(
            "DIR/heads lists {} heads, expected {}",
            cluster.heads.len(),
            opts.heads
        );
    }
    Ok(cluster)
}

impl Cluster {
    /// `XNAI_HEAD` value for this cluster.
    pub fn head_env(&self) -> String {
        self.heads.join(",")
    }

    /// The directory holding the binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A `Command` for the `xnai` CLI pointed at this cluster.
    pub fn xnai_cmd(&self) -> Command {
        let mut c = Command::new(self.bin.join("xnai"));
        c.env("XNAI_HEAD", self.head_env())
            .env("XNAI_TOKEN", &self.token)
            .stdin(Stdio::null());
        c
    }

    /// Run the CLI with `args`; returns the output whatever the exit status.
    pub fn xnai(&self, args: &[&str]) -> Result<Output> {
        self.xnai_cmd().args(args).output().context("running xnai")
    }

    /// Run the CLI and require success; returns trimmed stdout.
    pub fn xnai_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.xnai(args)?;
        if !out.status.success() {
            bail!(
                "xnai {:?} failed: {}",
                args,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Run the CLI and require failure; returns trimmed stderr.
    pub fn xnai_err(&self, args: &[&str]) -> Result<String> {
        let out = self.xnai(args)?;
        if out.status.success() {
            bail!(
                "xnai {:?} succeeded but should have failed: {}",
                args,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }

    /// An SDK client connected to this cluster.
    pub async fn client(&self) -> Result<xnai_sdk::Client> {
        Ok(xnai_sdk::Client::connect(self.client_config()).await?)
    }

    /// The client settings for this cluster (to change some before connecting).
    pub fn client_config(&self) -> xnai_sdk::ClientConfig {
        xnai_sdk::ClientConfig::new(self.heads.clone(), self.token.clone())
    }

    /// `xnai status --json`, parsed.
    pub fn status(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.xnai_ok(&["status", "--json"])?)?)
    }

    /// Start one more worker outside `xnai up` (with extra flags such as `--labels`), and wait
    /// until the head lists it. It is killed when the cluster is dropped.
    pub fn add_worker(&mut self, extra_args: &[&str]) -> Result<String> {
        let before = self.alive_workers()?;
        let n = self.extra.len();
        let addr_file = self.data_dir.path().join(format!("extra-worker-{n}.addr"));
        let log =
            std::fs::File::create(self.data_dir.path().join(format!("extra-worker-{n}.log")))?;
        let arena = format!("/dev/shm/xnai-arena-test-{}-{n}", std::process::id());
        let child = Command::new(self.bin.join("xnai-worker"))
            .args([
                "--head",
                &self.head_env(),
                "--listen",
                "127.0.0.1:0",
                "--arena-bytes",
                "256MiB",
            ])
            .args(["--arena-dir", &arena])
            .arg("--addr-file")
            .arg(&addr_file)
            .args(extra_args)
            .env("XNAI_TOKEN", &self.token)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.extra.push(child);
        self.extra_arenas.push(arena);
        wait_until(Duration::from_secs(30), "extra worker registered", || {
            Ok(addr_file.exists() && self.alive_workers()? > before)
        })?;
        Ok(std::fs::read_to_string(&addr_file)?.trim().to_string())
    }

    /// Number of workers `xnai status` reports alive.
    pub fn alive_workers(&self) -> Result<usize> {
        let st = self.status()?;
        Ok(st["workers"]
            .as_array()
            .map(|ws| ws.iter().filter(|w| w["state"] == "alive").count())
            .unwrap_or(0))
    }
}

/// A head process as `DIR/cluster.json` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadProc {
    /// Raft id.
    pub id: u64,
    /// host:port.
    pub address: String,
    /// Process id (0 when stopped).
    pub pid: u32,
}

impl Cluster {
    /// `DIR/cluster.json`, parsed.
    pub fn cluster_file(&self) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(self.data_dir.path().join("cluster.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The heads `xnai up` started.
    pub fn head_procs(&self) -> Result<Vec<HeadProc>> {
        let file = self.cluster_file()?;
        let heads = file["heads"]
            .as_array()
            .context("cluster.json has no heads")?;
        Ok(heads
            .iter()
            .map(|h| HeadProc {
                id: h["id"].as_u64().unwrap_or(0),
                address: h["address"].as_str().unwrap_or_default().to_string(),
                pid: h["pid"].as_u64().unwrap_or(0) as u32,
            })
            .collect())
    }

    /// The head `xnai status` names leader.
    pub fn leader(&self) -> Result<HeadProc> {
        let st = self.status()?;
        let id = st["heads"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["role"] == "leader"))
            .and_then(|h| h["id"].as_u64())
            .context("no head is leader")?;
        self.head_procs()?
            .into_iter()
            .find(|h| h.id == id)
            .context("the leader is not one of the started heads")
    }

    /// Send `signal` to a head process (SIGKILL, SIGSTOP, SIGCONT).
    pub fn signal_head(&self, head: &HeadProc, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(head.pid as i32);
        nix::sys::signal::kill(pid, signal)
            .with_context(|| format!("sending {signal} to head {} (pid {})", head.id, head.pid))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A head a test paused must run again to stop gracefully.
        if let Ok(heads) = self.head_procs() {
            for h in heads.iter().filter(|h| h.pid > 0) {
                let _ = self.signal_head(h, nix::sys::signal::Signal::SIGCONT);
            }
        }
        for c in &mut self.extra {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new(self.bin.join("xnai"))
            .arg("down")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .stdin(Stdio::null())
            .output();
        for a in &self.extra_arenas {
            let _ = std::fs::remove_dir_all(a);
        }
    }
}

/// Poll `cond` until it returns true or `deadline` passes (then fail naming `what`).
pub fn wait_until(
    deadline: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let end = Instant::now() + deadline;
    let mut last_err = None;
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > end {
            bail!("timed out after {deadline:?} waiting for {what} (last error: {last_err:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lowercase hex SHA-256 of `data` (what the built-in `digest` returns).
pub use xnai_sdk::builtins::sha256_hex;

/// Install a tracing subscriber for tests (RUST_LOG, default info); safe to call repeatedly.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}
