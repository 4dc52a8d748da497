//! The runtime: the leader's one loop that carries out effects (dispatching tasks, starting and
//! stopping actors, deleting freed copies, through the [`WorkerPool`] trait and the per-worker
//! breakers of [`crate::worker_link`]), feeds the results back as commands, runs the scheduler
//! after every applied batch and on a short tick, and on that tick also watches leases (dead
//! workers, expired sessions), probes workers and records breaker transitions. Every decision
//! is a logged command.

mod effects;
pub mod watch;

#[cfg(test)]
mod mem_log;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod time_tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::log::{CommandLog, EffectsReceiver, Received};
use crate::scheduler::schedule;
use crate::soft::Heartbeats;
use crate::state::{BreakerState, Command, Effect, Outcome};
use crate::worker_link::{Breakers, Transitions, WorkerPool};
use effects::Handles;
use xnai_proto::timings::Timings;

pub use effects::{RESTART_BACKOFF_MAX, RESTART_BACKOFF_START, restart_delay};

/// How often the scheduler and the watchers run when nothing is applied.
pub const SCHEDULE_TICK: Duration = Duration::from_millis(200);

/// Executes effects and schedules. Owns nothing but handles; run it with [`Runtime::run`].
pub struct Runtime {
    h: Handles,
    beats: Arc<Heartbeats>,
    /// The lease and what derives from it (probe interval and timeout), from `beats`.
    timings: Timings,
    transitions: Transitions,
}

impl Runtime {
    /// A runtime over `log`, calling workers through `pool`, placing by `beats`, declaring
    /// workers dead and probing them on the timings of `beats` ([`Heartbeats::timings`]).
    pub fn new(
        log: Arc<dyn CommandLog>,
        pool: Arc<dyn WorkerPool>,
        beats: Arc<Heartbeats>,
    ) -> Self {
        let (breakers, transitions) = Breakers::new();
        let h = Handles {
            log,
            pool,
            breakers: Arc::new(breakers),
            beats: Arc::clone(&beats),
        };
        let timings = beats.timings();
        Self {
            h,
            beats,
            timings,
            transitions,
        }
    }

    /// Run until `batches` closes (the log stopped) or the task is aborted; aborting also
    /// cancels every in-flight worker call. First re-dispatches what was running or starting
    /// when the head stopped (ExecuteTask is idempotent per task id) and re-opens the breakers
    /// the replicated state says are open. When `batches` lags (it dropped batches rather than
    /// block the log), it resynchronises the same way.
    pub async fn run(mut self, mut batches: EffectsReceiver) {
        let started = Instant::now();
        let mut inflight = JoinSet::new();
        let (recovered, open) = self.h.log.state().read(|s| {
            let open: Vec<_> = s
                .workers
                .iter()
                .filter(|(_, w)| w.breaker != BreakerState::Closed)
                .map(|(id, _)| *id)
                .collect();
            (effects::recovery_effects(s), open)
        });
        for w in open {
            tracing::info!(worker_id = %w, "keeping the breaker open that the log says is open");
            self.h.breakers.open(w);
        }
        if !recovered.is_empty() {
            tracing::info!(
                count = recovered.len(),
                "re-dispatching work in flight before the restart"
            );
        }
        self.execute(recovered, &mut inflight);
        let mut tick = tokio::time::interval(SCHEDULE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_probe = Instant::now();
        let mut dirty = true;
        // Set when the scheduler's last proposal changed nothing: wait for the tick, not the
        // batch that proposal itself produced, so a stale decision cannot spin.
        let mut quiet = false;
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    None => break,
                    Some(Received::Batch(batch)) => {
                        self.execute(batch.effects, &mut inflight);
                        dirty |= !quiet;
                        quiet = false;
                    }
                    Some(Received::Lagged) => {
                        self.resync(&mut inflight);
                        dirty = true;
                        quiet = false;
                    }
                },
                _ = tick.tick() => {
                    dirty = true;
                    self.watch(started.elapsed()).await;
                    if last_probe.elapsed() >= self.timings.probe_interval() {
                        last_probe = Instant::now();
                        self.probe(&mut inflight);
                    }
                }
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "a worker call panicked");
                    }
                }
            }
            self.record_transitions().await;
            if dirty {
                dirty = false;
                quiet = self.schedule_once().await;
            }
        }
    }

    /// After dropped batches: redo from the state what a new leader redoes (dispatch running
    /// tasks, start starting actors; both idempotent on the worker). Stops and deletes whose
    /// batch was dropped are not redone, as after a failover (ARCHITECTURE.md, Bounded queues).
    fn resync(&self, inflight: &mut JoinSet<()>) {
        let recovered = self.h.log.state().read(effects::recovery_effects);
        tracing::warn!(
            count = recovered.len(),
            "effects lagged: re-dispatching work in flight from the state"
        );
        self.execute(recovered, inflight);
    }

    /// Propose the scheduler's placements; returns whether they all turned out to be no-ops.
    async fn schedule_once(&self) -> bool {
        let view = self.beats.view();
        let commands = self.h.log.state().read(|s| schedule(s, &view));
        if commands.is_empty() {
            return false;
        }
        match self.h.log.propose(commands).await {
            Ok(outcomes) => outcomes.iter().all(Outcome::is_noop),
            Err(e) => {
                tracing::warn!(error = %e, "cannot propose placements");
                true
            }
        }
    }

    /// Declare silent workers dead and close expired sessions.
    async fn watch(&self, uptime: Duration) {
        let view = self.beats.view();
        let lease = self.timings.lease();
        let (dead, expired) = self.h.log.state().read(|s| {
            (
                watch::silent_workers(s, &view, uptime, lease),
                watch::expired_sessions(s, &self.beats, uptime),
            )
        });
        let mut commands = Vec::new();
        for (worker_id, silent_ms) in dead {
            let reason = format!(
                "no heartbeat for {silent_ms} ms (lease {} ms); declared dead at {}",
                lease.as_millis(),
                watch::utc_now()
            );
            tracing::warn!(%worker_id, %reason, "declaring worker dead");
            self.h.breakers.forget(&worker_id);
            commands.push(Command::DeclareWorkerDead { worker_id, reason });
        }
        for (session_id, silent_ms) in expired {
            tracing::info!(%session_id, silent_ms, "session lease expired; releasing its objects");
            self.beats.forget_session(&session_id);
            commands.push(Command::CloseSession {
                session_id,
                reason: format!("lease expired: no keep-alive for {silent_ms} ms"),
            });
        }
        if !commands.is_empty()
            && let Err(e) = self.h.log.propose(commands).await
        {
            tracing::warn!(error = %e, "cannot record dead workers or expired sessions");
        }
    }

    /// Probe every live worker through its breaker (an open one rejects at once, until its
    /// backoff has passed and it lets one half-open probe through).
    fn probe(&self, inflight: &mut JoinSet<()>) {
        let targets: Vec<_> = self.h.log.state().read(|s| {
            s.alive_workers_ids()
                .filter_map(|id| s.workers.get(&id).map(|w| (id, w.address.clone())))
                .collect()
        });
        for (worker_id, address) in targets {
            let h = self.h.clone();
            let beats = self.beats.clone();
            let timeout = self.timings.probe_timeout();
            inflight.spawn(async move {
                let call = h.pool.ping(&address, timeout);
                match h.breakers.call(worker_id, call).await {
                    Ok(()) => beats.touch(worker_id),
                    Err(e) => tracing::debug!(%worker_id, error = %e, "probe failed"),
                }
            });
        }
    }

    /// Log every breaker transition that differs from the replicated state.
    async fn record_transitions(&mut self) {
        let mut commands = Vec::new();
        for (worker_id, state) in self.transitions.take() {
            let differs = self.h.log.state().read(|s| {
                s.workers
                    .get(&worker_id)
                    .is_some_and(|w| w.breaker != state)
            });
            if differs {
                commands.push(Command::SetBreaker { worker_id, state });
            }
        }
        if !commands.is_empty()
            && let Err(e) = self.h.log.propose(commands).await
        {
            tracing::warn!(error = %e, "cannot record breaker transitions");
        }
    }

    fn execute(&self, effects: Vec<Effect>, inflight: &mut JoinSet<()>) {
        for effect in effects {
            let h = self.h.clone();
            match effect {
                Effect::DispatchTask {
                    task_id,
                    worker_id,
                    attempt,
                } => {
                    let object_id = task_id.return_object();
                    let span =
                        tracing::info_span!("dispatch", %task_id, %object_id, %worker_id, attempt);
                    inflight.spawn(
                        effects::dispatch_task(h, task_id, worker_id, attempt).instrument(span),
                    );
                }
                Effect::StartActor {
                    actor_id,
                    worker_id,
                } => {
                    let span = tracing::info_span!("start_actor", %actor_id, %worker_id);
                    inflight.spawn(effects::start_actor(h, actor_id, worker_id).instrument(span));
                }
                Effect::StopActor {
                    actor_id,
                    worker_id,
                } => {
                    let span = tracing::info_span!("stop_actor", %actor_id, %worker_id);
                    inflight.spawn(effects::stop_actor(h, actor_id, worker_id).instrument(span));
                }
                Effect::DeleteObjects {
                    worker_id,
                    meant_for,
                    object_ids,
                } => {
                    let span = tracing::info_span!("delete_objects", %worker_id, %meant_for);
                    let call = effects::delete_objects(h, worker_id, meant_for, object_ids);
                    inflight.spawn(call.instrument(span));
                }
            }
        }
    }
}
