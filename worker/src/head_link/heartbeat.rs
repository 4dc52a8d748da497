//! The two background loops of the head link: heartbeats (soft state: load, arena use,
//! pressure, spill use and totals) with re-registration when the head asks for it, following the Raft leader when a
//! head says it does not lead, and forwarding arena evictions with `ReportObjectsRemoved`.

use std::sync::Arc;
use std::time::Duration;

use xnai_proto::net::Backoff;
use xnai_proto::pb::{HeartbeatRequest, SpillStats};

use super::{HeadLink, Session};
use crate::arena::{EvictionReceiver, SpillUsage};

/// How long one heartbeat may take before it counts as failed.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a heartbeat carries.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatStatus {
    /// Tasks running now.
    pub running_tasks: u32,
    /// Arena bytes in use.
    pub arena_used: u64,
    /// Arena capacity.
    pub arena_capacity: u64,
    /// "ok", "warning" or "critical".
    pub pressure: &'static str,
    /// The spill directory's use and totals.
    pub spill: SpillUsage,
}

/// The wire form of spill figures.
fn spill_stats(s: &SpillUsage) -> SpillStats {
    SpillStats {
        capacity: s.capacity,
        used: s.used,
        objects: s.objects as u64,
        spills: s.spills,
        spilled_bytes: s.spilled_bytes,
        restores: s.restores,
        restored_bytes: s.restored_bytes,
    }
}

/// Reads the current status for each heartbeat.
pub type StatusFn = Box<dyn Fn() -> HeartbeatStatus + Send + Sync>;

/// Drops what the worker holds for its current registration (every arena object and stored
/// task result); run before registering under a new id.
pub type ForgetFn = Box<dyn Fn() + Send + Sync>;

/// Wait after the `n`-th failed heartbeat in a row: 200 ms doubling to 800 ms.
const FAILED_BEAT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_millis(800));

/// Heartbeat forever: every interval while the head answers; with backoff (and, after a few
/// failures, on the next head address) while it does not; registering anew when the head says
/// it does not know this worker. Cancel the task to stop.
///
/// Before registering again, `forget` drops everything the old registration held: the head
/// declared it dead and dropped its copies from the directory, so nothing it held is wanted,
/// and a rebuild may be placed on this process under the new id at once. Doing it here, before
/// the new id exists, means no delete from the head has to race that rebuild (seed 18).
pub async fn heartbeat_loop(link: Arc<HeadLink>, status: StatusFn, forget: ForgetFn) {
    let mut failures: u32 = 0;
    loop {
        let Some(session) = link.current() else {
            link.register(0).await;
            continue;
        };
        let wait = if failures == 0 {
            session.interval
        } else {
            FAILED_BEAT_BACKOFF.nth(failures)
        };
        tokio::time::sleep(wait).await;
        let st = status();
        let req = HeartbeatRequest {
            worker_id: session.worker_id.hex(),
            running_tasks: st.running_tasks,
            arena_used: st.arena_used,
            arena_capacity: st.arena_capacity,
            pressure: st.pressure.to_string(),
            spill: Some(spill_stats(&st.spill)),
        };
        let mut client = session.client.clone();
        match tokio::time::timeout(HEARTBEAT_TIMEOUT, client.heartbeat(req)).await {
            Ok(Ok(reply)) if reply.get_ref().reregister => {
                tracing::warn!(worker_id = %session.worker_id, "the head asks this worker to register again");
                link.set_session(None);
                forget();
                link.register(session.head_index).await;
                failures = 0;
            }
            Ok(Ok(_)) => {
                link.touch();
                if failures > 0 {
                    tracing::info!(head = %link.head_address(session.head_index), "heartbeats answered again");
                }
                failures = 0;
            }
            Ok(Err(s)) => {
                failures += 1;
                let hint = link.leader_hint(&s);
                on_failure(
                    &link,
                    &session,
                    failures,
                    hint,
                    &format!("{:?}: {}", s.code(), s.message()),
                );
            }
            Err(_) => {
                failures += 1;
                on_failure(&link, &session, failures, None, "timed out");
            }
        }
    }
}

/// After a failed heartbeat, move to the head the answer named as leader, else (with several
/// heads) to the next one; the worker id stays, since the registration is replicated.
fn on_failure(link: &HeadLink, session: &Session, failures: u32, leader: Option<usize>, why: &str) {
    if failures == 1 || failures.is_multiple_of(20) {
        tracing::warn!(head = %link.head_address(session.head_index), failures, error = why, "heartbeat failed");
    }
    if link.head_count() > 1 {
        link.move_session(session, leader.unwrap_or(session.head_index + 1));
    }
}

/// Forward arena evictions to the head until the arena goes away, in batches of at most
/// `arena::REPORT_BATCH` ids (the link already retries through leader changes; a report that
/// still fails is dropped, and the head meets the stale location as a failed fetch).
pub async fn forward_evictions(link: Arc<HeadLink>, mut evictions: EvictionReceiver) {
    while let Some(ids) = evictions.recv().await {
        if let Err(e) = link.report_removed(&ids, "evicted: arena full").await {
            tracing::warn!(objects = ids.len(), error = %e, "could not report evictions to the head");
        }
    }
}
