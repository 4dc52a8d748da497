//! Client-to-worker circuit breakers: the toolkit's keyed breaker (`xnai_proto::net::breaker`),
//! one per worker address, around actor calls and object fetches, with its default policy
//! (open after 5 consecutive failures, 1 s doubling to 60 s, then a half-open probe). Only
//! failures that say the worker is unreachable or stuck count (`net::node_failed`).

use std::future::Future;

use tonic::Status;
use xnai_proto::net::{self, BreakerError, BreakerPolicy, KeyedBreaker};

use super::error::{Error, Result};

/// Every worker's breaker, by address. Thread-safe.
pub(crate) struct WorkerBreakers(KeyedBreaker<String>);

impl Default for WorkerBreakers {
    fn default() -> Self {
        Self(KeyedBreaker::new("worker", BreakerPolicy::default()))
    }
}

/// How a gRPC call through a breaker failed.
pub(crate) struct CallFailed {
    /// The error the caller sees.
    pub error: Error,
    /// True when the call certainly never reached the worker (the breaker refused it, or the
    /// connection was never made), so resending it cannot run it twice.
    pub undelivered: bool,
}

impl WorkerBreakers {
    fn rejected(&self, address: &str) -> Error {
        Error::from(Status::unavailable(format!(
            "circuit breaker open for worker {address}: {} calls failed in a row",
            self.0.policy().failures
        )))
    }

    /// Run `call` (several RPCs, already SDK errors) to the worker at `address` through its
    /// breaker; while open, fails at once with a retriable UNAVAILABLE error.
    pub(crate) async fn call<T>(
        &self,
        address: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let failed = |e: &Error| e.code().is_some_and(net::node_failed);
        match self.0.call(&address.to_string(), failed, call).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Rejected) => Err(self.rejected(address)),
            Err(BreakerError::Failed(e)) => Err(e),
        }
    }

    /// Run one RPC to the worker at `address` through its breaker, telling a call that
    /// certainly never reached the worker from one that may have run.
    pub(crate) async fn call_rpc<T>(
        &self,
        address: &str,
        call: impl Future<Output = std::result::Result<T, Status>>,
    ) -> std::result::Result<T, CallFailed> {
        let failed = |s: &Status| net::node_failed(s.code());
        match self.0.call(&address.to_string(), failed, call).await {
            Ok(v) => Ok(v),
            Err(BreakerError::Rejected) => Err(CallFailed {
                error: self.rejected(address),
                undelivered: true,
            }),
            Err(BreakerError::Failed(s)) => Err(CallFailed {
                undelivered: net::never_reached(&s),
                error: Error::from(s),
            }),
        }
    }
}
