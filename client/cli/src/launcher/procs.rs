//! Child processes of `xnai up`: starting a head or worker in its own process group with its
//! output in a log file, waiting for its address file, and stopping processes (SIGTERM, then
//! SIGKILL after a grace period) only after checking a pid still runs one of our binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binaries `xnai up` starts.
pub const OUR_BINARIES: [&str; 2] = ["xnai-head", "xnai-worker"];

/// How long `stop` waits after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A head or worker started by this process.
pub struct Child {
    /// `head-1`, `worker-2`, ...
    pub name: String,
    /// OS process id.
    pub pid: u32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    proc: std::process::Child,
}

impl Child {
    /// Starts `program args` in its own process group (so a terminal's Ctrl-C reaches only
    /// `xnai up`), with the token in its environment and its output appended to `log`. With
    /// `listener`, the child is handed that bound socket (`--listen-fd`, see
    /// [`xnai_proto::handover`]) and this process closes its own copy once the child runs.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        token: &str,
        log: &Path,
        listener: Option<std::net::TcpListener>,
    ) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args);
        if let Some(l) = &listener {
            xnai_proto::handover::pass_listener(&mut cmd, l)
                .with_context(|| format!("handing {name} its listener"))?;
        }
        let proc = cmd
            .env("XNAI_TOKEN", token)
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        // The child holds the port now; it alone must, so a killed node's port is closed.
        drop(listener);
        Ok(Self {
            name: name.to_string(),
            pid: proc.id(),
            log: log.to_path_buf(),
            proc,
        })
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.try_wait().ok().flatten()
    }

    /// A one-line error for a child that died: which one, its exit status and its last log lines.
    pub fn died(&self, status: std::process::ExitStatus, when: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{} exited {when} ({status}): {} (full log: {})",
            self.name,
            log_tail(&self.log, 3),
            self.log.display()
        )
    }

    /// Polls until the child writes `file` (returning its trimmed content) or dies or `deadline`.
    pub async fn wait_addr_file(&mut self, file: &Path, deadline: Instant) -> Result<String> {
        loop {
            if let Ok(s) = std::fs::read_to_string(file) {
                let s = s.trim();
                if !s.is_empty() {
                    return Ok(s.to_string());
                }
            }
            if let Some(status) = self.exited() {
                return Err(self.died(status, "during startup"));
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not become ready in time: {} (full log: {})",
                    self.name,
                    log_tail(&self.log, 3),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Turns the child into a stop target.
    pub fn into_target(self) -> StopTarget {
        StopTarget {
            name: self.name,
            pid: self.pid,
            child: Some(self.proc),
        }
    }
}

/// The last `n` non-empty lines of a log, escape codes removed, joined with " | ".
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return format!("cannot read its log: {e}"),
    };
    let lines: Vec<String> = text
        .lines()
        .map(strip_ansi)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "its log is empty".into();
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True if `pid` is a live (not zombie) process running one of [`OUR_BINARIES`].
pub fn is_ours(pid: u32) -> bool {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(_) => return false,
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let argv0 = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|b| {
            let first = b.split(|&c| c == 0).next()?.to_vec();
            let p = PathBuf::from(String::from_utf8_lossy(&first).into_owned());
            p.file_name().map(|n| n.to_string_lossy().into_owned())
        });
    // `exe` may read "xnai-worker (deleted)" after a rebuild.
    [exe, argv0].into_iter().flatten().any(|n| {
        OUR_BINARIES
            .iter()
            .any(|b| n == *b || n.starts_with(&format!("{b} ")))
    })
}

/// A process to stop: one of our children (reaped directly) or a recorded pid.
pub struct StopTarget {
    /// `head-1`, `worker-2`, ...
    pub name: String,
    /// OS process id.
    pub pid: u32,
    /// Set when the process is our own child.
    pub child: Option<std::process::Child>,
}

impl StopTarget {
    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => is_ours(self.pid),
        }
    }

    fn signal(&self, sig: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// How one process ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StopOutcome {
    /// `head-1`, `worker-2`, ...
    pub name: String,
    /// OS process id.
    pub pid: u32,
    /// "terminated" (SIGTERM), "killed" (SIGKILL) or "not running".
    pub how: &'static str,
}

/// SIGTERMs every running target, waits up to [`STOP_GRACE`], then SIGKILLs the rest.
pub async fn stop_all(mut targets: Vec<StopTarget>) -> Vec<StopOutcome> {
    let mut outcomes: Vec<StopOutcome> = Vec::new();
    let mut live = Vec::new();
    for mut t in targets.drain(..) {
        if t.running() {
            t.signal(Signal::SIGTERM);
            live.push(t);
        } else {
            outcomes.push(StopOutcome {
                name: t.name,
                pid: t.pid,
                how: "not running",
            });
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while !live.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        live.retain_mut(|t| {
            let running = t.running();
            if !running {
                outcomes.push(StopOutcome {
                    name: t.name.clone(),
                    pid: t.pid,
                    how: "terminated",
                });
            }
            running
        });
    }
    for mut t in live {
        t.signal(Signal::SIGKILL);
        if let Some(c) = &mut t.child {
            let _ = c.wait();
        }
        outcomes.push(StopOutcome {
            name: t.name,
            pid: t.pid,
            how: "killed",
        });
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_strips_colors_and_keeps_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.log");
        std::fs::write(&p, "one\n\n\u{1b}[31mtwo\u{1b}[0m\nthree\nfour\n").unwrap();
        assert_eq!(log_tail(&p, 3), "two | three | four");
        assert!(log_tail(&tmp.path().join("missing"), 3).contains("cannot read"));
        assert!(
            !is_ours(std::process::id()),
            "the test binary is not one of ours"
        );
    }
}
