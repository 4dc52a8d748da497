//! What a run is asked to do: the target, the nemeses, the seed, the duration, the workload's
//! size. Parsing of the `--nemesis` list and of durations lives here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::{ChaosError, Result};

/// Where the faults go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A cluster of child processes this run starts from the built binaries, with a
    /// fault-injecting TCP proxy in front of every node.
    Local,
    /// The compose deployment in `deploy/` (docker).
    Compose,
}

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// SIGKILL a worker, restart it after the window.
    WorkerKill,
    /// SIGKILL the Raft leader head, restart it after the window.
    LeaderKill,
    /// SIGKILL a random head (leader or not), restart it after the window.
    HeadKill,
    /// SIGSTOP a worker for the window, then SIGCONT.
    WorkerPause,
    /// Cut a head or a worker off the network for the window.
    Partition,
    /// Delay (and randomly reset) every connection to a node for the window.
    SlowLink,
    /// Fill a worker's tmpfs arena for the window, then free it.
    ArenaFill,
}

impl NemesisKind {
    /// Every kind, in a fixed order (what `mix` draws from).
    pub const ALL: [NemesisKind; 7] = [
        NemesisKind::WorkerKill,
        NemesisKind::LeaderKill,
        NemesisKind::HeadKill,
        NemesisKind::WorkerPause,
        NemesisKind::Partition,
        NemesisKind::SlowLink,
        NemesisKind::ArenaFill,
    ];

    /// The flag spelling.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::WorkerKill => "worker-kill",
            NemesisKind::LeaderKill => "leader-kill",
            NemesisKind::HeadKill => "head-kill",
            NemesisKind::WorkerPause => "worker-pause",
            NemesisKind::Partition => "partition",
            NemesisKind::SlowLink => "slow-link",
            NemesisKind::ArenaFill => "arena-fill",
        }
    }
}

/// Parses `--nemesis`: a comma-separated list of kinds, `mix` (all of them) or `none`.
pub fn parse_nemeses(s: &str) -> Result<Vec<NemesisKind>> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "mix" => out.extend(NemesisKind::ALL),
            "none" => {}
            w => match NemesisKind::ALL.iter().find(|k| k.name() == w) {
                Some(k) => out.push(*k),
                None => {
                    let known: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(ChaosError::Config(format!(
                        "unknown nemesis {w:?}: use mix, none or some of {}",
                        known.join(", ")
                    )));
                }
            },
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parses `90s`, `2m`, `1500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let bad = || ChaosError::Config(format!("bad duration {s:?}: use e.g. 90s, 2m, 1500ms"));
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Everything a run needs.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// Where the faults go.
    pub target: TargetKind,
    /// The nemeses the schedule draws from (empty: a fault-free baseline run).
    pub nemeses: Vec<NemesisKind>,
    /// The seed everything derives from.
    pub seed: u64,
    /// How long the workload and the faults run (the final checks come after).
    pub duration: Duration,
    /// Where the JSON report goes; the SVG goes beside it (same name, `.svg`).
    pub report: PathBuf,
    /// Directory holding `xnai-head`, `xnai-worker` and `xnai` (local target).
    pub bin_dir: PathBuf,
    /// Concurrent workload clients.
    pub clients: usize,
    /// Heads of the local cluster.
    pub heads: usize,
    /// Workers of the local cluster.
    pub workers: usize,
    /// Arena capacity of each local worker, bytes.
    pub arena_bytes: u64,
    /// Extra environment for every head process (the test-only `XNAI_CHAOS_BUG`).
    pub head_env: Vec<(String, String)>,
    /// The repository root, for the compose target's `deploy/` scripts.
    pub repo_dir: PathBuf,
    /// Count warnings (acknowledged tasks whose retry budget ran out, inconclusive
    /// linearizability searches) as violations.
    pub strict: bool,
    /// The local heads' worker lease (`--worker-lease-ms`), ms. Longer than the product's
    /// default (1.5 s) so that a paused or cut-off worker's breaker opens (after 5 failed
    /// probes, ~2.5 s) before the worker is declared dead: see docs/CHAOS.md.
    pub worker_lease_ms: u64,
    /// Leave the full history out of the JSON report (checks still see it); for small
    /// example reports.
    pub omit_history: bool,
}

#[cfg(test)]
impl RunConfig {
    /// A local, fault-free configuration for unit tests of the report.
    pub fn for_tests() -> Self {
        Self {
            target: TargetKind::Local,
            nemeses: vec![],
            seed: 1,
            duration: Duration::from_secs(1),
            report: PathBuf::from("report.json"),
            bin_dir: PathBuf::from("."),
            clients: 1,
            heads: 1,
            workers: 1,
            arena_bytes: 1 << 20,
            head_env: vec![],
            repo_dir: PathBuf::from("."),
            strict: false,
            worker_lease_ms: DEFAULT_CHAOS_WORKER_LEASE_MS,
            omit_history: false,
        }
    }
}

/// See [`RunConfig::worker_lease_ms`].
pub const DEFAULT_CHAOS_WORKER_LEASE_MS: u64 = 5000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists_parse() {
        assert_eq!(parse_nemeses("mix").unwrap().len(), NemesisKind::ALL.len());
        assert_eq!(
            parse_nemeses("partition, worker-kill,partition").unwrap(),
            vec![NemesisKind::WorkerKill, NemesisKind::Partition]
        );
        assert!(parse_nemeses("none").unwrap().is_empty());
        assert!(parse_nemeses("meteor").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
    }
}
