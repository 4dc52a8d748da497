//! Head-to-worker circuit breakers: the toolkit's keyed breaker (`xnai_proto::net::breaker`),
//! one per worker, around every call the leader makes to it (dispatch, actor start/stop,
//! deletes, probes), with its default policy (open after 5 consecutive failures, 1 s doubling
//! to 60 s, then a half-open probe; one success closes it). Every transition is logged and kept
//! for the runtime, which records it in the replicated state (`Command::SetBreaker`) so the
//! scheduler skips the worker and a new leader keeps it cut off. Transitions wait in
//! [`Transitions`], the latest state per worker (bounded by the number of workers: a burst
//! of flaps coalesces, and the runtime records only the current state anyway).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use xnai_proto::ids::WorkerId;
use xnai_proto::net::{self, BreakerError, BreakerPolicy, KeyedBreaker};

use super::CallFailed;
use crate::state::BreakerState;

/// A transition of one worker's breaker.
pub type Transition = (WorkerId, BreakerState);

/// Every worker's breaker, created on first use. Thread-safe.
pub struct Breakers(KeyedBreaker<WorkerId>);

/// Breaker transitions not yet taken by the runtime: the latest state per worker. Written
/// from failsafe's synchronous observer (so no await, no blocking), read by the runtime on its
/// loop. Thread-safe; cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Transitions(Arc<Mutex<BTreeMap<WorkerId, BreakerState>>>);

impl Transitions {
    /// Remember `state` as `worker`'s latest (replacing one not yet taken).
    pub fn push(&self, worker: WorkerId, state: BreakerState) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(worker, state);
    }

    /// Every worker's latest state since the last call, in worker id order.
    pub fn take(&self) -> Vec<Transition> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }
}

fn to_state(s: net::BreakerState) -> BreakerState {
    match s {
        net::BreakerState::Closed => BreakerState::Closed,
        net::BreakerState::Open => BreakerState::Open,
        net::BreakerState::HalfOpen => BreakerState::HalfOpen,
    }
}

impl Breakers {
    /// The breakers and where their transitions wait for the runtime.
    pub fn new() -> (Self, Transitions) {
        let transitions = Transitions::default();
        let sink = transitions.clone();
        let observer = Arc::new(move |w: &WorkerId, s: net::BreakerState| {
            sink.push(*w, to_state(s));
        });
        let breakers = KeyedBreaker::observed("worker", BreakerPolicy::default(), observer);
        (Self(breakers), transitions)
    }

    /// Open `worker`'s breaker at once (a new leader taking over a breaker the replicated
    /// state says is open): the threshold of failures is recorded without calling anyone.
    pub fn open(&self, worker: WorkerId) {
        self.0.trip(&worker);
    }

    /// Forget a worker's breaker (it was declared dead).
    pub fn forget(&self, worker: &WorkerId) {
        self.0.forget(worker);
    }

    /// Run `call` to `worker` through its breaker: refused at once while open; a failure (an
    /// `Err`) counts towards opening it.
    pub async fn call<T>(
        &self,
        worker: WorkerId,
        call: impl Future<Output = Result<T, CallFailed>>,
    ) -> Result<T, CallFailed> {
        match self.0.call(&worker, |_: &CallFailed| true, call).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Rejected) => Err(CallFailed(format!(
                "circuit breaker open for worker {worker}: it failed {} calls in a row",
                self.0.policy().failures
            ))),
            Err(BreakerError::Failed(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_keep_the_latest_state_per_worker() {
        let t = Transitions::default();
        let (a, b) = (WorkerId(1), WorkerId(2));
        // A thousand flaps of one worker take one entry, not a thousand.
        for i in 0..1000 {
            let s = if i % 2 == 0 {
                BreakerState::Open
            } else {
                BreakerState::HalfOpen
            };
            t.push(a, s);
        }
        t.push(b, BreakerState::Open);
        t.push(a, BreakerState::Closed);
        assert_eq!(
            t.take(),
            vec![(a, BreakerState::Closed), (b, BreakerState::Open)]
        );
        assert!(t.take().is_empty(), "taken once");
    }
}
