//! Soft state: what workers' heartbeats say (load, arena use, pressure, last seen), and tasks
//! held back for a moment (an argument could not be fetched; backing off). Kept in memory on
//! the leader only and never logged; the scheduler reads it through a [`SoftView`]. A new
//! leader starts with no holds, which at worst retries a task a little early.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use xnai_proto::ids::{SessionId, TaskId, WorkerId};
use xnai_proto::timings::Timings;

/// Memory pressure a worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pressure {
    /// Normal.
    #[default]
    Ok,
    /// Above the warning threshold: no new placements (degraded).
    Warning,
    /// Above the critical threshold: refuses new work.
    Critical,
}

impl Pressure {
    /// Parse the wire text; anything unknown counts as "ok".
    pub fn parse(s: &str) -> Self {
        match s {
            "warning" => Pressure::Warning,
            "critical" => Pressure::Critical,
            _ => Pressure::Ok,
        }
    }

    /// The wire text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Pressure::Ok => "ok",
            Pressure::Warning => "warning",
            Pressure::Critical => "critical",
        }
    }
}

/// A worker's spill directory as its last heartbeat gave it: bound and use now, totals since
/// it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpillFigures {
    /// Bound in bytes (0: spilling off).
    pub capacity: u64,
    /// Bytes in spill files now.
    pub used: u64,
    /// Objects only on disk now.
    pub objects: u64,
    /// Objects moved to disk so far.
    pub spills: u64,
    /// Bytes moved to disk so far.
    pub spilled_bytes: u64,
    /// Objects read back so far.
    pub restores: u64,
    /// Bytes read back so far.
    pub restored_bytes: u64,
}

/// The latest heartbeat of one worker, as the scheduler and status see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftWorker {
    /// Milliseconds since the last heartbeat or registration.
    pub silent_ms: u64,
    /// Silent longer than this (ms), it gets no new placements ([`Timings::silent_after`]).
    pub silent_after_ms: u64,
    /// Tasks running on it.
    pub running_tasks: u32,
    /// Bytes used in its arena.
    pub arena_used: u64,
    /// Memory pressure.
    pub pressure: Pressure,
    /// Its spill directory.
    pub spill: SpillFigures,
}

impl Default for SoftWorker {
    /// Just heard from, with the default lease's silence threshold.
    fn default() -> Self {
        Self {
            silent_ms: 0,
            silent_after_ms: Timings::default().silent_after().as_millis() as u64,
            running_tasks: 0,
            arena_used: 0,
            pressure: Pressure::Ok,
            spill: SpillFigures::default(),
        }
    }
}

impl SoftWorker {
    /// Whether it may get new placements: heard from recently and under no memory pressure
    /// (above the warning threshold a worker is degraded: it keeps its work, gets no more).
    pub fn placeable(&self) -> bool {
        !self.silent() && self.pressure == Pressure::Ok
    }

    /// Whether its heartbeats stopped (it missed two in a row; not yet declared dead).
    pub fn silent(&self) -> bool {
        self.silent_ms > self.silent_after_ms
    }
}

/// A point-in-time copy of every worker's soft state; workers never heard from are absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftView {
    /// Per worker.
    pub workers: BTreeMap<WorkerId, SoftWorker>,
    /// Tasks not to place yet (backing off).
    pub held: BTreeSet<TaskId>,
}

impl SoftView {
    /// Whether `worker` may get new placements.
    pub fn placeable(&self, worker: &WorkerId) -> bool {
        self.workers.get(worker).is_some_and(SoftWorker::placeable)
    }
}

#[derive(Debug, Clone)]
struct Beat {
    last_seen: Instant,
    running_tasks: u32,
    arena_used: u64,
    pressure: Pressure,
    spill: SpillFigures,
}

/// Heartbeat table shared by the registry service (writer) and the scheduler/status (readers),
/// with the lease timings every reader of it uses. Thread-safe; the lock is held only to copy
/// or update an entry. `Default` has the default lease.
#[derive(Debug, Default)]
pub struct Heartbeats {
    timings: Timings,
    inner: Mutex<HashMap<WorkerId, Beat>>,
    sessions: Mutex<HashMap<SessionId, Instant>>,
    holds: Mutex<HashMap<TaskId, Instant>>,
}

impl Heartbeats {
    /// An empty table for workers on `timings` (the worker lease and what derives from it).
    pub fn new(timings: Timings) -> Self {
        Self {
            timings,
            ..Self::default()
        }
    }

    /// The lease timings: the heartbeat interval workers are told, silence, lease, probes.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Record a heartbeat (or a registration, with zero load).
    pub fn record(
        &self,
        worker: WorkerId,
        running_tasks: u32,
        arena_used: u64,
        pressure: Pressure,
    ) {
        self.record_at(worker, Instant::now(), running_tasks, arena_used, pressure);
    }

    fn record_at(
        &self,
        worker: WorkerId,
        last_seen: Instant,
        running_tasks: u32,
        arena_used: u64,
        pressure: Pressure,
    ) {
        let beat = Beat {
            last_seen,
            running_tasks,
            arena_used,
            pressure,
            spill: SpillFigures::default(),
        };
        self.lock().insert(worker, beat);
    }

    /// Record the spill figures a heartbeat carried (after [`Heartbeats::record`]).
    pub fn record_spill(&self, worker: WorkerId, spill: SpillFigures) {
        if let Some(beat) = self.lock().get_mut(&worker) {
            beat.spill = spill;
        }
    }

    /// The worker answered a probe: it is alive even if its heartbeats are late (a busy
    /// worker), so its lease is renewed; its load figures stay as last reported.
    pub fn touch(&self, worker: WorkerId) {
        if let Some(beat) = self.lock().get_mut(&worker) {
            beat.last_seen = Instant::now();
        }
    }

    /// A client renewed its session's lease (`OpenSession` or `KeepAlive`).
    pub fn renew_session(&self, session: SessionId) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session, Instant::now());
    }

    /// Milliseconds since `session` last renewed its lease on this head, if it ever did.
    pub fn session_silent_ms(&self, session: &SessionId) -> Option<u64> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(session)
            .map(|t| Instant::now().saturating_duration_since(*t).as_millis() as u64)
    }

    /// Forget a session (closed).
    pub fn forget_session(&self, session: &SessionId) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    /// Keep `task` from being placed for `delay`.
    pub fn hold(&self, task: TaskId, delay: Duration) {
        self.holds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task, Instant::now() + delay);
    }

    /// Forget a worker (declared dead).
    pub fn forget(&self, worker: &WorkerId) {
        self.lock().remove(worker);
    }

    /// Copy the table as seen now.
    pub fn view(&self) -> SoftView {
        let now = Instant::now();
        let silent_after_ms = self.timings.silent_after().as_millis() as u64;
        let workers = self
            .lock()
            .iter()
            .map(|(id, b)| {
                let silent_ms = now.saturating_duration_since(b.last_seen).as_millis() as u64;
                let soft = SoftWorker {
                    silent_ms,
                    silent_after_ms,
                    running_tasks: b.running_tasks,
                    arena_used: b.arena_used,
                    pressure: b.pressure,
                    spill: b.spill,
                };
                (*id, soft)
            })
            .collect();
        let held = {
            let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
            holds.retain(|_, until| *until > now);
            holds.keys().copied().collect()
        };
        SoftView { workers, held }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkerId, Beat>> {
        // A panic while holding this lock cannot leave a half-written entry: recover the map.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_workers_are_not_placeable() {
        let beats = Heartbeats::default();
        let w = WorkerId(1 << 8);
        beats.record(w, 2, 100, Pressure::parse("warning"));
        assert!(!beats.view().placeable(&w), "warning pressure: degraded");
        beats.record(w, 2, 100, Pressure::Ok);
        assert!(beats.view().placeable(&w));
        let Some(old) = Instant::now().checked_sub(Duration::from_millis(3100)) else {
            return;
        };
        beats.record_at(w, old, 2, 100, Pressure::Warning);
        let view = beats.view();
        assert!(!view.placeable(&w));
        assert!(view.workers[&w].silent());
        beats.record(w, 0, 0, Pressure::Critical);
        assert!(
            !beats.view().placeable(&w),
            "critical pressure takes no placements"
        );
        assert!(
            !beats.view().placeable(&WorkerId(2 << 8)),
            "never heard from"
        );
    }
}
