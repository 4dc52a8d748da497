//! Worker-to-worker circuit breakers: the toolkit's keyed breaker (`xnai_proto::net::breaker`),
//! one per peer address, around object pulls. A peer that fails 5 pulls in a row at the
//! transport level is not asked again until its open period (1 s doubling to 60 s) has passed;
//! then one half-open pull probes it. Whether a failure counts is decided from the gRPC code
//! the pull got (`net::node_failed`); a peer that answers "not found" is healthy.

use std::future::Future;

use tonic::Code;
use xnai_proto::ids::ObjectId;
use xnai_proto::net::{self, BreakerError, BreakerPolicy, KeyedBreaker};

use crate::error::{Result, WorkerError};

/// A failed pull: the error, and the gRPC code of the call that caused it (none when the
/// bytes were wrong or the local arena failed: the peer answered).
#[derive(Debug)]
pub struct PullFailed {
    /// What the executor sees.
    pub error: WorkerError,
    /// The status code the peer's call ended with.
    pub code: Option<Code>,
}

impl From<WorkerError> for PullFailed {
    fn from(error: WorkerError) -> Self {
        Self { error, code: None }
    }
}

/// Every peer's breaker, created on first use. Thread-safe.
pub struct PeerBreakers(KeyedBreaker<String>);

impl Default for PeerBreakers {
    fn default() -> Self {
        Self(KeyedBreaker::new("peer", BreakerPolicy::default()))
    }
}

impl PeerBreakers {
    /// Run a pull of `object` from `peer` through the peer's breaker.
    pub async fn call<T>(
        &self,
        peer: &str,
        object: ObjectId,
        pull: impl Future<Output = std::result::Result<T, PullFailed>>,
    ) -> Result<T> {
        let failed = |f: &PullFailed| f.code.is_some_and(net::node_failed);
        match self.0.call(&peer.to_string(), failed, pull).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Rejected) => Err(WorkerError::ObjectUnavailable {
                object,
                reason: format!(
                    "circuit breaker open for peer {peer}: it failed {} pulls in a row",
                    self.0.policy().failures
                ),
            }),
            Err(BreakerError::Failed(f)) => Err(f.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: Code) -> PullFailed {
        PullFailed {
            error: WorkerError::ObjectUnavailable {
                object: ObjectId(1 << 8),
                reason: format!("{code:?}"),
            },
            code: Some(code),
        }
    }

    #[tokio::test]
    async fn opens_after_threshold_and_ignores_not_found() {
        let b = PeerBreakers::default();
        let id = ObjectId(1 << 8);
        for _ in 0..10 {
            let _ = b
                .call("p2", id, async { Err::<(), _>(failed(Code::NotFound)) })
                .await;
        }
        assert!(
            b.call("p2", id, async { Ok(()) }).await.is_ok(),
            "not found is not a failure"
        );
        for _ in 0..BreakerPolicy::default().failures {
            let _ = b
                .call("p1", id, async { Err::<(), _>(failed(Code::Unavailable)) })
                .await;
        }
        let e = b.call("p1", id, async { Ok(()) }).await;
        let Err(WorkerError::ObjectUnavailable { reason, .. }) = e else {
            panic!("not rejected: {e:?}");
        };
        assert!(reason.contains("circuit breaker open"), "{reason}");
    }
}
