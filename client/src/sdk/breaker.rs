//! Client-to-worker circuit breakers: one failsafe breaker per worker address around actor
//! calls and object fetches. Default policy: open after 5 consecutive transport failures,
//! backoff 1 s doubling to 60 s, then a half-open call probes the worker. Application errors
//! and "not found" answers do not count. Transitions are logged with tracing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use failsafe::backoff::{self, Exponential};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine};
use tonic::Code;

use super::error::{Error, Result};

/// Consecutive failures that open a worker's breaker.
pub const FAILURE_THRESHOLD: u32 = 5;

/// Logs one worker's breaker transitions.
pub struct Transitions {
    address: String,
}

impl Instrument for Transitions {
    fn on_call_rejected(&self) {
        tracing::debug!(worker = %self.address, "call rejected: worker circuit breaker open");
    }
    fn on_open(&self) {
        tracing::warn!(worker = %self.address, "worker circuit breaker open");
    }
    fn on_half_open(&self) {
        tracing::info!(worker = %self.address, "worker circuit breaker half-open: probing");
    }
    fn on_closed(&self) {
        tracing::debug!(worker = %self.address, "worker circuit breaker closed");
    }
}

type Breaker = StateMachine<ConsecutiveFailures<Exponential>, Transitions>;

/// Whether an error says the worker itself is unreachable or broken.
fn worker_failed(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled)
    )
}

/// Every worker's breaker, by address. Thread-safe.
#[derive(Default)]
pub(crate) struct WorkerBreakers {
    map: Mutex<HashMap<String, Breaker>>,
}

impl WorkerBreakers {
    fn get(&self, address: &str) -> Breaker {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(address.to_string())
            .or_insert_with(|| {
                let policy = failure_policy::consecutive_failures(
                    FAILURE_THRESHOLD,
                    backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)),
                );
                Config::new()
                    .failure_policy(policy)
                    .instrument(Transitions {
                        address: address.to_string(),
                    })
                    .build()
            })
            .clone()
    }

    /// Run `call` to the worker at `address` through its breaker; while open, fails at once
    /// with a retriable UNAVAILABLE error.
    pub(crate) async fn call<T>(
        &self,
        address: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.get(address)
            .call_with(worker_failed, call)
            .await
            .map_err(|e| match e {
                failsafe::Error::Rejected => Error::from(tonic::Status::unavailable(format!(
                    "circuit breaker open for worker {address}: {FAILURE_THRESHOLD} calls failed in a row"
                ))),
                failsafe::Error::Inner(e) => e,
            })
    }
}
