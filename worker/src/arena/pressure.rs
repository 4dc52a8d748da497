//! Memory pressure for heartbeats: the fullest of the arena's tmpfs, the cgroup's memory
//! (memory.current / memory.max) and the host (/proc/meminfo MemAvailable), graded against the
//! `--pressure-warn` / `--pressure-critical` thresholds.

use std::path::Path;

/// How loaded memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PressureLevel {
    /// Below the warning threshold.
    Ok,
    /// At or above the warning threshold.
    Warning,
    /// At or above the critical threshold.
    Critical,
}

impl PressureLevel {
    /// The wire text: "ok", "warning" or "critical".
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Warning and critical fractions of memory in use.
#[derive(Debug, Clone, Copy)]
pub struct PressureThresholds {
    /// Fraction (0..1) at which pressure is "warning".
    pub warn: f64,
    /// Fraction (0..1) at which pressure is "critical".
    pub critical: f64,
}

/// Fractions in use (0..1) of each source that could be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct PressureReading {
    /// The arena's filesystem.
    pub tmpfs: Option<f64>,
    /// The process's cgroup (only when it has a memory limit).
    pub cgroup: Option<f64>,
    /// The whole host.
    pub host: Option<f64>,
}

impl PressureReading {
    /// The highest fraction in use.
    pub fn worst(&self) -> f64 {
        [self.tmpfs, self.cgroup, self.host]
            .into_iter()
            .flatten()
            .fold(0.0, f64::max)
    }

    /// Grade against thresholds.
    pub fn level(&self, t: PressureThresholds) -> PressureLevel {
        let w = self.worst();
        if w >= t.critical {
            PressureLevel::Critical
        } else if w >= t.warn {
            PressureLevel::Warning
        } else {
            PressureLevel::Ok
        }
    }
}

/// Fraction in use from /proc/meminfo text: 1 - MemAvailable / MemTotal.
pub fn parse_meminfo(text: &str) -> Option<f64> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    let total = field("MemTotal:")?;
    let avail = field("MemAvailable:")?;
    (total > 0).then(|| 1.0 - avail as f64 / total as f64)
}

/// MemTotal in bytes from /proc/meminfo text.
pub fn parse_mem_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// Fraction in use from cgroup v2 memory.current / memory.max texts (`None` when unlimited).
pub fn parse_cgroup(current: &str, max: &str) -> Option<f64> {
    let max: u64 = max.trim().parse().ok()?;
    let cur: u64 = current.trim().parse().ok()?;
    (max > 0).then(|| cur as f64 / max as f64)
}

fn read_cgroup() -> Option<f64> {
    let rel = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        });
    let mut dirs = Vec::new();
    if let Some(rel) = rel {
        dirs.push(format!("/sys/fs/cgroup{rel}"));
    }
    dirs.push("/sys/fs/cgroup".to_string());
    dirs.iter().find_map(|d| {
        let cur = std::fs::read_to_string(format!("{d}/memory.current")).ok()?;
        let max = std::fs::read_to_string(format!("{d}/memory.max")).ok()?;
        parse_cgroup(&cur, &max)
    })
}

/// Read every source for an arena in `dir`.
pub fn read_pressure(dir: &Path) -> PressureReading {
    let tmpfs = super::fs_space(dir)
        .ok()
        .filter(|s| s.total > 0)
        .map(|s| 1.0 - s.free as f64 / s.total as f64);
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo(&t));
    PressureReading {
        tmpfs,
        cgroup: read_cgroup(),
        host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_the_worst_source() {
        let t = PressureThresholds {
            warn: 0.85,
            critical: 0.95,
        };
        let r = |tmpfs, cgroup, host| PressureReading {
            tmpfs,
            cgroup,
            host,
        };
        assert_eq!(r(Some(0.1), None, Some(0.5)).level(t), PressureLevel::Ok);
        assert_eq!(
            r(Some(0.9), None, Some(0.5)).level(t),
            PressureLevel::Warning
        );
        assert_eq!(r(None, Some(0.97), None).level(t).as_str(), "critical");
        assert_eq!(PressureReading::default().level(t), PressureLevel::Ok);
    }

    #[test]
    fn parses_proc_and_cgroup_texts() {
        let mi = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
        assert!((parse_meminfo(mi).unwrap() - 0.75).abs() < 1e-9);
        assert_eq!(parse_mem_total(mi), Some(1_024_000));
        assert_eq!(parse_cgroup("50\n", "max\n"), None);
        assert_eq!(parse_cgroup("50\n", "200\n"), Some(0.25));
        let _ = read_pressure(Path::new("/"));
    }
}
