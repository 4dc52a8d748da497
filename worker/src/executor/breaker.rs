//! Worker-to-worker circuit breakers: one failsafe breaker per peer address around object
//! pulls. A peer that fails [`FAILURE_THRESHOLD`] pulls in a row at the transport level is not
//! asked again until its backoff (1 s doubling to 60 s) has passed; then one half-open pull
//! probes it. A peer that answers "not found" is healthy: that does not count. Every transition
//! is logged with tracing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use failsafe::backoff::{self, Exponential};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine};
use xnai_proto::ids::ObjectId;

use crate::error::{Result, WorkerError};

/// Consecutive failed pulls that open a peer's breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// First open period; doubles on every failed half-open probe, up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest open period.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Logs a peer breaker's transitions.
pub struct PeerTransitions {
    peer: String,
}

impl Instrument for PeerTransitions {
    fn on_call_rejected(&self) {
        tracing::debug!(peer = %self.peer, "pull rejected: peer circuit breaker open");
    }
    fn on_open(&self) {
        tracing::warn!(peer = %self.peer, "peer circuit breaker open: no pulls from it for now");
    }
    fn on_half_open(&self) {
        tracing::info!(peer = %self.peer, "peer circuit breaker half-open: probing");
    }
    fn on_closed(&self) {
        tracing::debug!(peer = %self.peer, "peer circuit breaker closed");
    }
}

type PeerBreaker = StateMachine<ConsecutiveFailures<Exponential>, PeerTransitions>;

/// Whether a pull error says the peer itself is in trouble (not merely missing the object).
fn peer_failed(e: &WorkerError) -> bool {
    match e {
        WorkerError::ObjectUnavailable { reason, .. } => {
            ["Unavailable", "DeadlineExceeded", "Cancelled", "Unknown"]
                .iter()
                .any(|p| reason.starts_with(p))
        }
        _ => false,
    }
}

/// Every peer's breaker, created on first use. Thread-safe.
#[derive(Default)]
pub struct PeerBreakers {
    map: Mutex<HashMap<String, PeerBreaker>>,
}

impl PeerBreakers {
    fn get(&self, peer: &str) -> PeerBreaker {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(peer.to_string())
            .or_insert_with(|| {
                let policy = failure_policy::consecutive_failures(
                    FAILURE_THRESHOLD,
                    backoff::exponential(BACKOFF_START, BACKOFF_MAX),
                );
                Config::new()
                    .failure_policy(policy)
                    .instrument(PeerTransitions {
                        peer: peer.to_string(),
                    })
                    .build()
            })
            .clone()
    }

    /// Run a pull of `object` from `peer` through the peer's breaker.
    pub async fn call<T>(
        &self,
        peer: &str,
        object: ObjectId,
        pull: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let breaker = self.get(peer);
        breaker
            .call_with(peer_failed, pull)
            .await
            .map_err(|e| match e {
                failsafe::Error::Rejected => WorkerError::ObjectUnavailable {
                    object,
                    reason: format!(
                        "circuit breaker open for peer {peer}: it failed {FAILURE_THRESHOLD} pulls in a row"
                    ),
                },
                failsafe::Error::Inner(e) => e,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_after_threshold_and_ignores_not_found() {
        let b = PeerBreakers::default();
        let id = ObjectId(1 << 8);
        let down = || async {
            Err::<(), _>(WorkerError::ObjectUnavailable {
                object: id,
                reason: "Unavailable: connection refused".into(),
            })
        };
        let missing = || async {
            Err::<(), _>(WorkerError::ObjectUnavailable {
                object: id,
                reason: "NotFound: no object".into(),
            })
        };
        for _ in 0..10 {
            let _ = b.call("p2", id, missing()).await;
        }
        assert!(
            b.get("p2").is_call_permitted(),
            "not found is not a failure"
        );
        for _ in 0..FAILURE_THRESHOLD {
            let _ = b.call("p1", id, down()).await;
        }
        let e = b.call("p1", id, async { Ok(()) }).await;
        let Err(WorkerError::ObjectUnavailable { reason, .. }) = e else {
            panic!("not rejected: {e:?}");
        };
        assert!(reason.contains("circuit breaker open"), "{reason}");
    }
}
