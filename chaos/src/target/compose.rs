//! The compose target: the deployment in `deploy/` (3 heads, 3 workers, host networking on
//! 127.0.0.1). Kills and pauses are `docker kill -s KILL|STOP|CONT` and `docker start`;
//! a partition drops the node's port with iptables in the (shared, host) network namespace,
//! which needs root; slow links are not offered (netem on `lo` would slow every node).

use std::path::PathBuf;
use std::process::Command;

use crate::error::{ChaosError, Result};

/// The running compose deployment.
pub struct ComposeCluster {
    repo: PathBuf,
    project: String,
    /// Head addresses (`XNAI_HEAD`).
    pub heads: Vec<String>,
    token: String,
    /// iptables rules added, removed on heal.
    rules: Vec<Vec<String>>,
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| ChaosError::Cluster(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(ChaosError::Cluster(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// `head-2` -> `head2`, `worker-1` -> `worker1` (the compose service names).
fn service(name: &str) -> String {
    name.replace('-', "")
}

impl ComposeCluster {
    /// `deploy/up.sh` (builds the image unless told not to, waits for health) and read the
    /// `XNAI_HEAD=` / `XNAI_TOKEN=` lines it prints.
    pub fn start(repo: PathBuf) -> Result<Self> {
        let out = run(
            Command::new(repo.join("deploy/up.sh")).current_dir(&repo),
            "deploy/up.sh",
        )?;
        let mut heads = Vec::new();
        let mut token = String::new();
        for line in out.lines() {
            if let Some(v) = line.strip_prefix("XNAI_HEAD=") {
                heads = v.split(',').map(|s| s.trim().to_string()).collect();
            } else if let Some(v) = line.strip_prefix("XNAI_TOKEN=") {
                token = v.trim().to_string();
            }
        }
        if heads.is_empty() || token.is_empty() {
            return Err(ChaosError::Cluster(
                "deploy/up.sh did not print XNAI_HEAD= and XNAI_TOKEN=".into(),
            ));
        }
        let project = std::env::var("XNAI_PROJECT").unwrap_or_else(|_| "xnai".into());
        Ok(Self {
            repo,
            project,
            heads,
            token,
            rules: vec![],
        })
    }

    /// The cluster token.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn container(&self, name: &str) -> Result<String> {
        let id = run(
            Command::new("docker").args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.project),
                "--filter",
                &format!("label=com.docker.compose.service={}", service(name)),
            ]),
            "docker ps",
        )?;
        id.lines()
            .next()
            .map(str::to_string)
            .ok_or_else(|| ChaosError::Cluster(format!("no container for {name}")))
    }

    /// `docker kill -s SIGNAL` on the node's container.
    pub fn signal(&self, name: &str, signal: &str) -> Result<()> {
        let id = self.container(name)?;
        run(
            Command::new("docker").args(["kill", "-s", signal, &id]),
            "docker kill",
        )
        .map(|_| ())
    }

    /// Start the node's container again.
    pub fn restart(&self, name: &str) -> Result<()> {
        let id = self.container(name)?;
        run(Command::new("docker").args(["start", &id]), "docker start").map(|_| ())
    }

    /// The node's port (heads 17001.., workers 17101.., moved by XNAI_PORT_BASE).
    fn port(name: &str) -> Result<u16> {
        let base: u16 = std::env::var("XNAI_PORT_BASE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(17000);
        let (kind, n) = name
            .rsplit_once('-')
            .and_then(|(k, n)| n.parse::<u16>().ok().map(|n| (k, n)))
            .ok_or_else(|| ChaosError::Config(format!("bad node name {name}")))?;
        Ok(if kind == "head" {
            base + n
        } else {
            base + 100 + n
        })
    }

    /// Drop all traffic to and from the node's port (iptables, needs root).
    pub fn partition(&mut self, name: &str) -> Result<()> {
        let port = Self::port(name)?.to_string();
        for rule in [
            vec!["INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"],
            vec!["OUTPUT", "-p", "tcp", "--sport", &port, "-j", "DROP"],
        ] {
            let rule: Vec<String> = rule.into_iter().map(String::from).collect();
            run(
                Command::new("iptables").arg("-I").args(&rule),
                "iptables (partition needs root)",
            )?;
            self.rules.push(rule);
        }
        Ok(())
    }

    /// Remove every partition rule.
    pub fn heal_network(&mut self) {
        for rule in self.rules.drain(..) {
            let _ = Command::new("iptables").arg("-D").args(&rule).output();
        }
    }

    /// Heal the network, resume and start every container.
    pub fn heal_all(&mut self) {
        self.heal_network();
        for n in [
            "head-1", "head-2", "head-3", "worker-1", "worker-2", "worker-3",
        ] {
            let _ = self.signal(n, "CONT");
            let _ = self.restart(n);
        }
    }

    /// `deploy/down.sh --volumes`: the run's sled data goes too, so the next run starts from
    /// an empty control state (the workload's expectations start from zero).
    pub fn stop(mut self) {
        self.heal_network();
        let _ = Command::new(self.repo.join("deploy/down.sh"))
            .arg("--volumes")
            .current_dir(&self.repo)
            .output();
    }
}
