//! The worker's honest health: `Worker`, `LocalArena` and the overall status are SERVING only
//! while this worker is registered with the head leader (its last registration or heartbeat
//! was answered within [`HEAD_LINK_LEASE`]) and its arena accepts a probe write; NOT_SERVING
//! before it registers, when the head link is lost, or when the arena's tmpfs refuses writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use xnai_proto::serve::NodeHealth;
use xnai_proto::serve::health::{LOCAL_ARENA_SERVICE, OVERALL, WORKER_SERVICE};

use crate::head_link::HeadLink;

/// Every name a worker answers for, overall included.
pub const ALL: [&str; 3] = [OVERALL, WORKER_SERVICE, LOCAL_ARENA_SERVICE];
/// How long the head link may go without an answered heartbeat before the worker says
/// NOT_SERVING: the head's default worker lease (`--worker-lease-ms`), after which the
/// leader declares this worker dead anyway.
pub const HEAD_LINK_LEASE: Duration = Duration::from_millis(1500);
/// How often the worker re-checks its head link and probes its arena.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// The probe file's name: a `.tmp-` name, so the arena's own clean-up removes a leftover.
const PROBE_FILE: &str = ".tmp-health-probe";

/// What the health check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// A registration with some head exists.
    pub registered: bool,
    /// Time since the head last answered a registration or heartbeat.
    pub contact_age: Option<Duration>,
    /// The arena probe write's outcome.
    pub arena: Result<(), String>,
}

/// SERVING (`Ok` with the reason) or NOT_SERVING (`Err` with the reason): pure, unit-tested.
pub fn assess(o: &Observation) -> Result<String, String> {
    if !o.registered {
        return Err("not registered with a head leader".into());
    }
    match o.contact_age {
        Some(age) if age <= HEAD_LINK_LEASE => {}
        Some(age) => {
            return Err(format!(
                "head link lost: no answered heartbeat for {} ms",
                age.as_millis()
            ));
        }
        None => return Err("no answered heartbeat yet".into()),
    }
    if let Err(e) = &o.arena {
        return Err(format!("arena not writable: {e}"));
    }
    Ok("registered with the leader, arena writable".into())
}

/// Write and remove a one-byte file in the arena directory (tmpfs: one page, no disk I/O).
fn probe_arena(dir: &Path) -> Result<(), String> {
    let path = dir.join(PROBE_FILE);
    let written = std::fs::write(&path, b"x").map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    written
}

/// Check the head link and the arena once and set `health` accordingly.
pub async fn check_once(link: &HeadLink, arena_dir: &Path, health: &NodeHealth) {
    let dir = arena_dir.to_path_buf();
    let arena = tokio::task::spawn_blocking(move || probe_arena(&dir))
        .await
        .unwrap_or_else(|e| Err(format!("probe task failed: {e}")));
    let seen = Observation {
        registered: link.worker_id().is_some(),
        contact_age: link.contact_age(),
        arena,
    };
    match assess(&seen) {
        Ok(why) => health.set(&ALL, true, &why).await,
        Err(why) => health.set(&ALL, false, &why).await,
    }
}

/// Check the head link and the arena every [`CHECK_EVERY`] and set `health` accordingly.
/// Runs until cancelled.
pub async fn follow(link: Arc<HeadLink>, arena_dir: PathBuf, health: NodeHealth) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        check_once(&link, &arena_dir, &health).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(registered: bool, age_ms: Option<u64>, arena: Result<(), String>) -> Observation {
        Observation {
            registered,
            contact_age: age_ms.map(Duration::from_millis),
            arena,
        }
    }

    #[test]
    fn serving_needs_registration_a_fresh_link_and_a_writable_arena() {
        assert!(assess(&seen(true, Some(100), Ok(()))).is_ok());
        assert!(assess(&seen(true, Some(1500), Ok(()))).is_ok());
        let e = assess(&seen(false, Some(100), Ok(()))).unwrap_err();
        assert!(e.contains("not registered"), "{e}");
        let e = assess(&seen(true, None, Ok(()))).unwrap_err();
        assert!(e.contains("no answered heartbeat"), "{e}");
        let e = assess(&seen(true, Some(1501), Ok(()))).unwrap_err();
        assert!(e.contains("head link lost"), "{e}");
        let e = assess(&seen(true, Some(10), Err("no space left".into()))).unwrap_err();
        assert!(e.contains("arena not writable: no space left"), "{e}");
    }

    #[test]
    fn the_probe_writes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        probe_arena(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let gone = dir.path().join("missing");
        assert!(probe_arena(&gone).is_err());
    }
}
