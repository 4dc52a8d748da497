//! What the runtime watches on its tick: heartbeat leases (a worker silent for longer than the
//! lease is declared dead, but never before one full lease after the runtime started, so a new
//! leader gives every worker a grace period), client session leases, and the breaker probes
//! (a cheap call to every live worker, so a worker that stops answering is cut off even when
//! no work goes to it, and an open breaker gets its half-open probe). Every interval derives
//! from the lease ([`xnai_proto::timings::Timings`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xnai_proto::ids::{SessionId, WorkerId};

use crate::soft::{Heartbeats, SoftView};
use crate::state::ControlState;

/// Live workers silent for longer than `lease`, with how long they have been silent (ms).
/// A worker never heard from by this runtime counts as silent since `uptime` ago; nothing is
/// reported before one full lease of uptime (the grace period).
pub fn silent_workers(
    s: &ControlState,
    view: &SoftView,
    uptime: Duration,
    lease: Duration,
) -> Vec<(WorkerId, u64)> {
    if uptime < lease {
        return Vec::new();
    }
    let lease_ms = lease.as_millis() as u64;
    let uptime_ms = uptime.as_millis() as u64;
    s.alive_workers_ids()
        .filter_map(|id| {
            let silent = view
                .workers
                .get(&id)
                .map_or(uptime_ms, |w| w.silent_ms.min(uptime_ms));
            (silent > lease_ms).then_some((id, silent))
        })
        .collect()
}

/// Open sessions whose lease ran out, with how long they have been silent (ms). A session
/// that never renewed on this head counts from the runtime's start (grace, as for workers).
pub fn expired_sessions(
    s: &ControlState,
    beats: &Heartbeats,
    uptime: Duration,
) -> Vec<(SessionId, u64)> {
    let uptime_ms = uptime.as_millis() as u64;
    s.sessions
        .iter()
        .filter_map(|(id, rec)| {
            let silent = beats
                .session_silent_ms(id)
                .map_or(uptime_ms, |ms| ms.min(uptime_ms));
            (silent > rec.lease_ms).then_some((*id, silent))
        })
        .collect()
}

/// The current time in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`, for messages users read.
pub fn utc_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soft::SoftWorker;
    use crate::state::{Command, Resources};

    fn state_with(ids: &[WorkerId]) -> ControlState {
        let mut s = ControlState::default();
        for (i, id) in ids.iter().enumerate() {
            s.apply(Command::RegisterWorker {
                request_id: format!("r{i}"),
                worker_id: *id,
                address: format!("127.0.0.1:{}", 9000 + i),
                pid: 1,
                resources: Resources::cpus(1),
                arena_capacity: 1 << 20,
                functions: vec![],
                classes: vec![],
            });
        }
        s
    }

    #[test]
    fn lease_and_grace_period() {
        let (a, b) = (WorkerId(1 << 8), WorkerId(2 << 8));
        let s = state_with(&[a, b]);
        let lease = Duration::from_millis(1500);
        let mut view = SoftView::default();
        view.workers.insert(
            a,
            SoftWorker {
                silent_ms: 5000,
                ..SoftWorker::default()
            },
        );
        // Within the grace period nobody is declared dead, however silent.
        assert!(silent_workers(&s, &view, Duration::from_millis(1000), lease).is_empty());
        // After it: a (silent 5 s, capped at the uptime) and b (never heard from) are.
        let dead = silent_workers(&s, &view, Duration::from_millis(1600), lease);
        assert_eq!(dead, vec![(a, 1600), (b, 1600)]);
        if let Some(w) = view.workers.get_mut(&a) {
            w.silent_ms = 200;
        }
        let dead = silent_workers(&s, &view, Duration::from_secs(10), lease);
        assert_eq!(dead, vec![(b, 10_000)]);
    }

    #[test]
    fn utc_format() {
        let t = utc_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
