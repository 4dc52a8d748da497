//! One node process of the local target: how to start it (again), signal it, kill it, notice
//! that it died by itself, and stop it. A worker gets a fresh tmpfs arena directory on every
//! start, removed when the process is killed or stopped (its arena is volatile by design).
//! A node whose address others know up front gets its port already bound (`--listen-fd`, see
//! [`xnai_proto::handover`]): the listener bound when the cluster was set up for its first start,
//! the same port bound again right before each restart. Each node runs in its own working
//! directory (`NAME.cwd` beside its log) with `RUST_BACKTRACE=1`, so a node that aborts leaves
//! its panic backtrace in the log and, where the system writes core files into the working
//! directory and [`allow_core_dumps`] could raise the limit, a core file there.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{ChaosError, Result};

/// A node process and what it takes to start it again.
pub(super) struct Node {
    /// `head-1`, `worker-2`, ...
    pub name: String,
    bin: PathBuf,
    /// Flags without the arena dir (workers get a fresh one per start).
    pub args: Vec<String>,
    env: Vec<(String, String)>,
    /// Log file (appended to by every start).
    pub log: PathBuf,
    /// Worker (else head).
    pub is_worker: bool,
    child: Option<tokio::process::Child>,
    arena: Option<PathBuf>,
    generation: u32,
    /// The fixed address handed over bound at every start, if any.
    listen: Option<std::net::SocketAddr>,
    /// The listener for the next start (bound at set-up; taken by the first start).
    listener: Option<std::net::TcpListener>,
}

impl Node {
    /// A node that is not started yet.
    pub fn new(
        name: String,
        bin: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        log: PathBuf,
        is_worker: bool,
        listener: Option<std::net::TcpListener>,
    ) -> Self {
        Self {
            listen: listener.as_ref().and_then(|l| l.local_addr().ok()),
            listener,
            name,
            bin,
            args,
            env,
            log,
            is_worker,
            child: None,
            arena: None,
            generation: 0,
        }
    }

    /// Whether a process of ours runs (or is paused) for this node.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Start the process with the cluster token.
    pub fn spawn(&mut self, token: &str) -> Result<()> {
        self.generation += 1;
        let cwd = self.cwd();
        std::fs::create_dir_all(&cwd)
            .map_err(|e| ChaosError::io(format!("creating {}", cwd.display()), e))?;
        let mut args = self.args.clone();
        if self.is_worker {
            let arena = PathBuf::from(format!(
                "/dev/shm/xnai-arena-chaos-{}-{}-{}",
                std::process::id(),
                self.name,
                self.generation
            ));
            args.extend(["--arena-dir".into(), arena.display().to_string()]);
            self.arena = Some(arena);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| ChaosError::io(format!("opening {}", self.log.display()), e))?;
        let err = log
            .try_clone()
            .map_err(|e| ChaosError::io("log handle", e))?;
        let listener = match (self.listener.take(), self.listen) {
            (Some(l), _) => Some(l),
            (None, Some(addr)) => Some(
                xnai_proto::handover::bind_retrying(addr, xnai_proto::handover::REBIND_PATIENCE)
                    .map_err(|e| {
                        ChaosError::io(format!("binding {}'s port again", self.name), e)
                    })?,
            ),
            (None, None) => None,
        };
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(&args).current_dir(&cwd);
        if let Some(l) = &listener {
            xnai_proto::handover::pass_listener(&mut cmd, l)
                .map_err(|e| ChaosError::io(format!("handing {} its listener", self.name), e))?;
        }
        let child = tokio::process::Command::from(cmd)
            .env("XNAI_TOKEN", token)
            // A panic that cannot unwind (abort) prints its backtrace; errors do not capture one.
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "0")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ChaosError::Cluster(format!("starting {}: {e}", self.name)))?;
        // The child alone holds the port now, so a killed node's port is closed.
        drop(listener);
        self.child = Some(child);
        Ok(())
    }

    /// Send `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| ChaosError::Cluster(format!("{} is not running", self.name)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .map_err(|e| ChaosError::Cluster(format!("sending {signal} to {}: {e}", self.name)))
    }

    fn remove_arena(&mut self) {
        if let Some(a) = self.arena.take() {
            let _ = std::fs::remove_dir_all(a);
        }
    }

    /// SIGKILL and reap the process; a worker's arena goes with it.
    pub async fn kill(&mut self) -> Result<()> {
        self.signal(Signal::SIGKILL)?;
        if let Some(mut c) = self.child.take() {
            let _ = c.wait().await;
        }
        self.remove_arena();
        Ok(())
    }

    /// The node's working directory (where a core file lands).
    fn cwd(&self) -> PathBuf {
        self.log.with_file_name(format!("{}.cwd", self.name))
    }

    /// If the process exited by itself, forget it and say how, with the end of its log (so a
    /// CI report shows why even after the run directory is gone) and any core file.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        let tail = xnai_cli::launcher::procs::log_tail(&self.log, CRASH_LOG_LINES);
        let cores: Vec<String> = std::fs::read_dir(self.cwd())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
            .map(|e| e.path().display().to_string())
            .collect();
        let core = if cores.is_empty() {
            String::new()
        } else {
            format!("; core file: {}", cores.join(", "))
        };
        Some(format!(
            "{} exited by itself ({status}){core}; see {}; its last log lines: {tail}",
            self.name,
            self.log.display()
        ))
    }

    /// Ask the process to stop (resuming it first if paused).
    pub fn terminate(&self) {
        if self.running() {
            let _ = self.signal(Signal::SIGCONT);
            let _ = self.signal(Signal::SIGTERM);
        }
    }

    /// Wait for a terminated process (SIGKILL after `grace`) and remove the arena.
    pub async fn reap(&mut self, grace: Duration) {
        if let Some(mut c) = self.child.take()
            && tokio::time::timeout(grace, c.wait()).await.is_err()
        {
            let _ = c.kill().await;
        }
        self.remove_arena();
    }
}

/// Raise this process's soft core-file limit to its hard limit, so the nodes it starts (which
/// inherit it) leave a core file when they abort. Best effort: returns the limit now in force.
pub fn allow_core_dumps() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the `rlimit` we pass, which is valid.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_CORE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
            }
        }
    }
    lim.rlim_cur
}

/// Log lines quoted when a node exits by itself.
const CRASH_LOG_LINES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that aborts is reported as exited by itself, with its signal and the end of its
    /// log; it ran in its own working directory (where a core file would land).
    #[tokio::test]
    async fn an_aborting_node_is_reported_with_its_log_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = "pwd; echo about to abort; kill -ABRT $$";
        let mut node = Node::new(
            "head-9".into(),
            PathBuf::from("/bin/sh"),
            vec!["-c".into(), script.into()],
            vec![],
            dir.path().join("head-9.log"),
            false,
            None,
        );
        node.spawn("token").expect("spawn");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let message = loop {
            if let Some(m) = node.exited() {
                break m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the node never exited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(message.contains("head-9 exited by itself"), "{message}");
        assert!(message.contains("SIGABRT"), "{message}");
        assert!(message.contains("about to abort"), "{message}");
        assert!(
            message.contains("head-9.cwd"),
            "ran in its own directory: {message}"
        );
    }
}
