//! Head-to-worker circuit breakers: one failsafe breaker per worker around every call the
//! leader makes to it (dispatch, actor start/stop, deletes, probes). Policy: open after
//! [`FAILURE_THRESHOLD`] consecutive failures, stay open from 1 s doubling to 60 s, then let a
//! half-open probe through; one success closes it. Every transition is logged with tracing and
//! sent to the runtime, which records it in the replicated state (`Command::SetBreaker`) so the
//! scheduler skips the worker and a new leader keeps it cut off.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use failsafe::backoff::{self, Exponential};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use xnai_proto::ids::WorkerId;

use super::CallFailed;
use crate::state::BreakerState;

/// Consecutive failures that open a breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// First open period; doubles on every failed half-open probe.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest open period.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A transition of one worker's breaker.
pub type Transition = (WorkerId, BreakerState);

/// Logs transitions and forwards them to the runtime. The `on_closed` failsafe reports when a
/// breaker is built is skipped: it is not a transition.
pub struct Transitions {
    worker: WorkerId,
    fresh: AtomicBool,
    tx: UnboundedSender<Transition>,
}

impl Transitions {
    fn report(&self, state: BreakerState) {
        if self.fresh.swap(false, Ordering::AcqRel) && state == BreakerState::Closed {
            return;
        }
        match state {
            BreakerState::Open => {
                tracing::warn!(worker_id = %self.worker, "circuit breaker open: no calls or placements")
            }
            BreakerState::HalfOpen => {
                tracing::info!(worker_id = %self.worker, "circuit breaker half-open: probing")
            }
            BreakerState::Closed => {
                tracing::info!(worker_id = %self.worker, "circuit breaker closed: worker answers again")
            }
        }
        let _ = self.tx.send((self.worker, state));
    }
}

impl Instrument for Transitions {
    fn on_call_rejected(&self) {
        tracing::debug!(worker_id = %self.worker, "call rejected by an open circuit breaker");
    }
    fn on_open(&self) {
        self.report(BreakerState::Open);
    }
    fn on_half_open(&self) {
        self.report(BreakerState::HalfOpen);
    }
    fn on_closed(&self) {
        self.report(BreakerState::Closed);
    }
}

/// One worker's breaker (cheap to clone: clones share the state).
pub type Breaker = StateMachine<ConsecutiveFailures<Exponential>, Transitions>;

/// The default policy: 5 consecutive failures, backoff 1 s doubling to 60 s.
pub fn policy() -> ConsecutiveFailures<Exponential> {
    failure_policy::consecutive_failures(
        FAILURE_THRESHOLD,
        backoff::exponential(BACKOFF_START, BACKOFF_MAX),
    )
}

/// Every worker's breaker, created on first use. Thread-safe.
pub struct Breakers {
    map: Mutex<HashMap<WorkerId, Breaker>>,
    tx: UnboundedSender<Transition>,
}

impl Breakers {
    /// The breakers and the receiving end of their transitions.
    pub fn new() -> (Self, UnboundedReceiver<Transition>) {
        let (tx, rx) = unbounded_channel();
        let breakers = Self {
            map: Mutex::new(HashMap::new()),
            tx,
        };
        (breakers, rx)
    }

    /// The breaker of `worker`.
    pub fn get(&self, worker: WorkerId) -> Breaker {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(worker)
            .or_insert_with(|| {
                let transitions = Transitions {
                    worker,
                    fresh: AtomicBool::new(true),
                    tx: self.tx.clone(),
                };
                Config::new()
                    .failure_policy(policy())
                    .instrument(transitions)
                    .build()
            })
            .clone()
    }

    /// Open `worker`'s breaker at once (a new leader taking over a breaker the replicated
    /// state says is open): the threshold of failures is recorded without calling anyone.
    pub fn open(&self, worker: WorkerId) {
        let breaker = self.get(worker);
        for _ in 0..FAILURE_THRESHOLD {
            breaker.on_error();
        }
    }

    /// Forget a worker's breaker (it was declared dead).
    pub fn forget(&self, worker: &WorkerId) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(worker);
    }

    /// Run `call` to `worker` through its breaker: refused at once while open; a failure (an
    /// `Err`) counts towards opening it.
    pub async fn call<T>(
        &self,
        worker: WorkerId,
        call: impl Future<Output = Result<T, CallFailed>>,
    ) -> Result<T, CallFailed> {
        let breaker = self.get(worker);
        breaker.call(call).await.map_err(|e| match e {
            failsafe::Error::Rejected => CallFailed(format!(
                "circuit breaker open for worker {worker}: it failed {FAILURE_THRESHOLD} calls in a row"
            )),
            failsafe::Error::Inner(e) => e,
        })
    }
}
