//! Honest health: [`NodeHealth`] serves the standard `grpc.health.v1.Health` service with every
//! name a node answers for (the overall "" and each xnai service) starting NOT_SERVING; the
//! node flips them as its real state changes (a head: reaches a leader with quorum; a worker:
//! registered with the leader and its arena writable). [`probe`] is the client side the
//! `health` subcommands and compose healthchecks use.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

/// The overall health of a node (the gRPC convention: the empty service name).
pub const OVERALL: &str = "";
/// The head's client-facing service.
pub const HEAD_SERVICE: &str = "xnai.v1.Head";
/// The head's service for workers.
pub const REGISTRY_SERVICE: &str = "xnai.v1.WorkerRegistry";
/// The heads' Raft service.
pub const PEER_SERVICE: &str = "xnai.v1.Peer";
/// The worker's service.
pub const WORKER_SERVICE: &str = "xnai.v1.Worker";
/// The worker's same-host shared-memory service.
pub const LOCAL_ARENA_SERVICE: &str = "xnai.v1.LocalArena";

/// A node's health statuses by service name. Cheap to clone; clones share the statuses.
#[derive(Clone, Debug)]
pub struct NodeHealth {
    reporter: HealthReporter,
    /// Last status set per name, to log transitions once.
    last: Arc<Mutex<Vec<(String, bool)>>>,
}

impl NodeHealth {
    /// The health service for a node answering for `services`: each of them and the overall
    /// status start NOT_SERVING.
    pub async fn new(services: &[&str]) -> (Self, HealthServer<impl Health + use<>>) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let mut last = Vec::new();
        for name in std::iter::once(OVERALL).chain(services.iter().copied()) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
            last.push((name.to_string(), false));
        }
        let me = Self {
            reporter,
            last: Arc::new(Mutex::new(last)),
        };
        (me, server)
    }

    /// Set `services` to SERVING or NOT_SERVING; `why` is logged when a status changes.
    pub async fn set(&self, services: &[&str], serving: bool, why: &str) {
        let changed: Vec<&str> = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            services
                .iter()
                .copied()
                .filter(|name| match last.iter_mut().find(|(n, _)| n == name) {
                    Some((_, s)) if *s == serving => false,
                    Some((_, s)) => {
                        *s = serving;
                        true
                    }
                    None => {
                        last.push((name.to_string(), serving));
                        true
                    }
                })
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in &changed {
            self.reporter.set_service_status(*name, status).await;
        }
        if serving {
            tracing::info!(services = ?changed, why, "health: SERVING");
        } else {
            tracing::warn!(services = ?changed, why, "health: NOT_SERVING");
        }
    }

    /// Whether `service` was last set SERVING.
    pub fn is_serving(&self, service: &str) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.iter().any(|(n, s)| n == service && *s)
    }
}

/// Why a health probe got no status.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address is not a valid URI.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// No connection within the timeout.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address probed.
        addr: String,
        /// The transport's message.
        reason: String,
    },
    /// The call failed (NOT_FOUND: the node does not know that service name).
    #[error("{addr} answered {code:?}: {message}")]
    Call {
        /// The address probed.
        addr: String,
        /// The gRPC code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

/// Ask the node at `addr` (`HOST:PORT` or a URI) for the status of `service` ("" for the
/// whole node); `Ok(true)` only for SERVING. Connect and call each get `timeout`.
pub async fn probe(addr: &str, service: &str, timeout: Duration) -> Result<bool, ProbeError> {
    let channel = crate::net::endpoint(addr, crate::net::Traffic::Control)
        .map_err(|_| ProbeError::BadAddress(addr.to_string()))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| ProbeError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| ProbeError::Call {
            addr: addr.to_string(),
            code: s.code(),
            message: s.message().to_string(),
        })?;
    Ok(reply.into_inner().status == WireStatus::Serving as i32)
}
