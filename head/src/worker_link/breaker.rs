//! Head-to-worker circuit breakers: the toolkit's keyed breaker (`xnai_proto::net::breaker`),
//! one per worker, around every call the leader makes to it (dispatch, actor start/stop,
//! deletes, probes), with its default policy (open after 5 consecutive failures, 1 s doubling
//! to 60 s, then a half-open probe; one success closes it). Every transition is logged and sent
//! to the runtime, which records it in the replicated state (`Command::SetBreaker`) so the
//! scheduler skips the worker and a new leader keeps it cut off.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use xnai_proto::ids::WorkerId;
use xnai_proto::net::{self, BreakerError, BreakerPolicy, KeyedBreaker};

use super::CallFailed;
use crate::state::BreakerState;

/// A transition of one worker's breaker.
pub type Transition = (WorkerId, BreakerState);

/// Every worker's breaker, created on first use. Thread-safe.
pub struct Breakers(KeyedBreaker<WorkerId>);

fn to_state(s: net::BreakerState) -> BreakerState {
    match s {
        net::BreakerState::Closed => BreakerState::Closed,
        net::BreakerState::Open => BreakerState::Open,
        net::BreakerState::HalfOpen => BreakerState::HalfOpen,
    }
}

impl Breakers {
    /// The breakers and the receiving end of their transitions.
    pub fn new() -> (Self, UnboundedReceiver<Transition>) {
        let (tx, rx) = unbounded_channel();
        let observer = Arc::new(move |w: &WorkerId, s: net::BreakerState| {
            let _ = tx.send((*w, to_state(s)));
        });
        let breakers = KeyedBreaker::observed("worker", BreakerPolicy::default(), observer);
        (Self(breakers), rx)
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
