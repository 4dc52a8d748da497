//! A compose deployment under test: runs `deploy/up.sh` / `deploy/down.sh` with a project name,
//! port range, image tag and state directory of its own (so a user's deployment is left alone),
//! and offers the host CLI plus the `docker` and `/proc` probes the test needs.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Compose project of the test deployment.
pub const PROJECT: &str = "xnaitest";
/// Ports: heads on BASE+1..3, workers on BASE+101..103 (below the ephemeral range).
pub const PORT_BASE: u16 = 27000;
const IMAGE: &str = "xnai:test";

/// The repository root (`tests/` is one of its folders).
fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Whether a Docker engine answers on this machine.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running deployment; dropping it runs `deploy/down.sh --volumes` unless [`Deployment::down`]
/// already did.
pub struct Deployment {
    /// Head addresses, from up.sh's `XNAI_HEAD=` line.
    pub heads: Vec<String>,
    /// The cluster token, from up.sh's `XNAI_TOKEN=` line.
    pub token: String,
    bin: PathBuf,
    state: tempfile::TempDir,
    down_done: bool,
}

/// Run a deploy script with the test deployment's settings.
fn script(bin: &std::path::Path, state: &std::path::Path, name: &str) -> Command {
    let mut c = Command::new(repo_dir().join("deploy").join(name));
    c.env("XNAI_BIN_DIR", bin)
        .env("XNAI_PROFILE", "debug")
        .env("XNAI_PROJECT", PROJECT)
        .env("XNAI_IMAGE", IMAGE)
        .env("XNAI_STATE_DIR", state)
        .env("XNAI_PORT_BASE", PORT_BASE.to_string())
        .env("XNAI_ARENA_TMPFS", "256m")
        .env("XNAI_ARENA_BYTES", "240MiB")
        .env("XNAI_WORKER_MEMORY", "192MiB")
        .env("XNAI_WORKER_MEM_LIMIT", "512m")
        .env("XNAI_HEAD_MEM_LIMIT", "512m")
        .env("XNAI_UP_TIMEOUT", "240")
        .env_remove("XNAI_TOKEN")
        .env_remove("XNAI_HEAD")
        .env_remove("XNAI_HEADS")
        .stdin(Stdio::null());
    c
}

fn check(out: &Output, what: &str) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

impl Deployment {
    /// `deploy/down.sh --volumes` (leftovers of an aborted run), then `deploy/up.sh` with the
    /// binaries of this build (`XNAI_BIN_DIR`: no second cargo build).
    pub fn up() -> Result<Deployment> {
        let bin = xnai_tests::bin_dir()?;
        let state = tempfile::Builder::new().prefix("xnai-deploy-").tempdir()?;
        let _ = script(&bin, state.path(), "down.sh")
            .arg("--volumes")
            .output();
        let out = script(&bin, state.path(), "up.sh")
            .output()
            .context("running deploy/up.sh")?;
        let mut d = Deployment {
            heads: vec![],
            token: String::new(),
            bin,
            state,
            down_done: false,
        };
        let stdout = check(&out, "deploy/up.sh")?;
        let last: Vec<&str> = stdout.lines().rev().take(2).collect();
        match last.as_slice() {
            [token, head] if head.starts_with("XNAI_HEAD=") && token.starts_with("XNAI_TOKEN=") => {
                d.heads = head["XNAI_HEAD=".len()..]
                    .split(',')
                    .map(String::from)
                    .collect();
                d.token = token["XNAI_TOKEN=".len()..].to_string();
            }
            _ => bail!("up.sh's last two lines are not XNAI_HEAD= and XNAI_TOKEN=: {stdout:?}"),
        }
        Ok(d)
    }

    /// `deploy/down.sh --volumes`.
    pub fn down(&mut self) -> Result<()> {
        self.down_done = true;
        let out = script(&self.bin, self.state.path(), "down.sh")
            .arg("--volumes")
            .output()?;
        check(&out, "deploy/down.sh --volumes").map(drop)
    }

    /// A host `xnai` CLI command pointed at the deployment.
    pub fn xnai_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("xnai"));
        c.args(args)
            .env("XNAI_HEAD", self.heads.join(","))
            .env("XNAI_TOKEN", &self.token)
            .stdin(Stdio::null());
        c
    }

    /// Run the CLI and require success; returns trimmed stdout.
    pub fn xnai_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.xnai_cmd(args).output().context("running xnai")?;
        Ok(check(&out, &format!("xnai {args:?}"))?.trim().to_string())
    }

    /// Start the CLI in the background (stdout and stderr captured).
    pub fn xnai_spawn(&self, args: &[&str]) -> Result<Child> {
        Ok(self
            .xnai_cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    }

    /// `xnai status --json`.
    pub fn status(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.xnai_ok(&["status", "--json"])?)?)
    }

    /// An SDK client connected to the deployment.
    pub async fn client(&self) -> Result<xnai_sdk::Client> {
        Ok(xnai_sdk::Client::connect(xnai_sdk::ClientConfig::new(
            self.heads.clone(),
            self.token.clone(),
        ))
        .await?)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if !self.down_done {
            // The test failed part way: keep the containers' last words for the CI log.
            for id in containers(None).unwrap_or_default() {
                if let Ok(out) = Command::new("docker")
                    .args(["logs", "--tail", "30", &id])
                    .output()
                {
                    let name = inspect(&id, "{{.Name}}").unwrap_or(id);
                    eprintln!(
                        "--- docker logs {name}:\n{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            let _ = self.down();
        }
    }
}

/// The compose service listening on `addr` (`127.0.0.1:27101` -> `worker1`).
pub fn service_of(addr: &str) -> Result<String> {
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {addr}"))?;
    match port.checked_sub(PORT_BASE) {
        Some(n @ 1..=3) => Ok(format!("head{n}")),
        Some(n @ 101..=103) => Ok(format!("worker{}", n - 100)),
        _ => bail!("{addr} is not a port of the test deployment"),
    }
}

/// `docker` with `args`, required to succeed; trimmed stdout.
pub fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running docker")?;
    Ok(check(&out, &format!("docker {args:?}"))?.trim().to_string())
}

/// Ids of the project's containers (all states), optionally of one service.
pub fn containers(service: Option<&str>) -> Result<Vec<String>> {
    let mut args = vec![
        "ps".to_string(),
        "-aq".into(),
        "--filter".into(),
        format!("label=com.docker.compose.project={PROJECT}"),
    ];
    if let Some(s) = service {
        args.push("--filter".into());
        args.push(format!("label=com.docker.compose.service={s}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(docker(&args)?.lines().map(String::from).collect())
}

/// The one container of `service`.
pub fn container(service: &str) -> Result<String> {
    match containers(Some(service))?.as_slice() {
        [one] => Ok(one.clone()),
        other => bail!("expected one container for {service}, found {other:?}"),
    }
}

/// `docker inspect -f FORMAT ID`.
pub fn inspect(id: &str, format: &str) -> Result<String> {
    docker(&["inspect", "-f", format, id])
}

/// Poll `cond` every `every` until it holds, failing after `deadline` with `what`.
pub fn poll(
    deadline: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let end = Instant::now() + deadline;
    let mut last = None;
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() > end {
            bail!("timed out after {deadline:?} waiting for {what} (last error: {last:?})");
        }
        std::thread::sleep(every);
    }
}

/// Wait until the container of `service` reports healthy.
pub fn wait_healthy(service: &str, deadline: Duration) -> Result<()> {
    poll(
        deadline,
        Duration::from_millis(500),
        &format!("{service} healthy"),
        || {
            let id = container(service)?;
            Ok(inspect(&id, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")? == "healthy")
        },
    )
}
