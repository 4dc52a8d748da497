//! The worker's link to the head (`WorkerRegistry`): registration, heartbeats ([`heartbeat`]),
//! and object reports (new put objects, pulled copies, evictions). The current registration
//! (which head, which worker id) lives in a watch channel so every sender sees re-registrations.

mod follow;
pub mod heartbeat;

pub use follow::FOLLOW_DEADLINE;

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::ids::{ObjectId, WorkerId};
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Backoff, Traffic};
use xnai_proto::pb::worker_registry_client::WorkerRegistryClient;
use xnai_proto::pb::{self, CopyKind as PbCopyKind};
use xnai_proto::timings::Timings;

use crate::arena::StoredMeta;
use crate::error::{Result, WorkerError};

/// How long one call to the head may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a report waits for a registration to exist.
const SESSION_WAIT: Duration = Duration::from_secs(10);

/// Which kind of copy is reported to the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedCopy {
    /// A new object put by a client (the primary copy).
    Put,
    /// A secondary copy pulled for a task.
    Pulled,
}

/// Tells the head about new copies. A trait so executor and service tests can fake the head.
pub trait ObjectReporter: Send + Sync + 'static {
    /// Report that this worker now holds `id`; resolves once the head acknowledged it.
    fn object_added(
        &self,
        id: ObjectId,
        meta: StoredMeta,
        kind: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>>;

    /// The worker id of the current registration, waiting a little while the worker registers
    /// (again); `None`: not registered. Requests from the head fenced to another id are
    /// ignored. By default (fakes that never register): `None`.
    fn registered_as(&self) -> BoxFuture<'static, Option<WorkerId>> {
        Box::pin(async { None })
    }
}

/// What this worker tells the head when it registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `host:port` peers and clients reach this worker at.
    pub address: String,
    /// Process id.
    pub pid: u32,
    /// CPUs offered.
    pub cpus: f64,
    /// Memory offered in bytes.
    pub memory_bytes: u64,
    /// Labels (`k=v`).
    pub labels: HashMap<String, String>,
    /// Arena capacity in bytes.
    pub arena_capacity: u64,
    /// Task function names.
    pub functions: Vec<String>,
    /// Actor class names.
    pub actor_classes: Vec<String>,
}

pub(crate) type RegistryClient = WorkerRegistryClient<InterceptedService<Channel, TokenInject>>;

/// One registration with one head.
#[derive(Clone)]
pub(crate) struct Session {
    pub client: RegistryClient,
    pub head_index: usize,
    pub worker_id: WorkerId,
    pub interval: Duration,
}

/// Registration state and calls to the head. Share it behind an `Arc`.
pub struct HeadLink {
    heads: Vec<String>,
    token: TokenInject,
    registration: Registration,
    session: watch::Sender<Option<Session>>,
    /// How long a report waits for a registration to exist.
    session_wait: Duration,
    /// When the head leader last answered a registration or heartbeat (worker health).
    last_contact: std::sync::Mutex<Option<tokio::time::Instant>>,
}

fn head_error(context: impl Into<String>, s: tonic::Status) -> WorkerError {
    WorkerError::Head {
        context: context.into(),
        message: format!("{:?}: {}", s.code(), s.message()),
    }
}

impl HeadLink {
    /// A link to the heads at `heads` (tried in order), not yet registered.
    pub fn new(heads: Vec<String>, token: TokenInject, registration: Registration) -> Self {
        let (session, _) = watch::channel(None);
        Self {
            heads,
            token,
            registration,
            session,
            session_wait: SESSION_WAIT,
            last_contact: std::sync::Mutex::new(None),
        }
    }

    /// Record that the head leader answered a registration or heartbeat just now.
    pub(crate) fn touch(&self) {
        *self.last_contact.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio::time::Instant::now());
    }

    /// Time since the head leader last answered a registration or heartbeat (`None`: never).
    pub fn contact_age(&self) -> Option<Duration> {
        self.last_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed())
    }

    /// The worker id of the current registration, if any.
    pub fn worker_id(&self) -> Option<WorkerId> {
        self.session.borrow().as_ref().map(|s| s.worker_id)
    }

    pub(crate) fn client(&self, head_index: usize) -> Result<RegistryClient> {
        let address = &self.heads[head_index % self.heads.len()];
        let channel = net::lazy_channel(address, Traffic::Control)
            .map_err(|e| WorkerError::BadRequest(format!("head: {e}")))?;
        Ok(
            WorkerRegistryClient::with_interceptor(channel, self.token.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    pub(crate) fn head_count(&self) -> usize {
        self.heads.len()
    }

    pub(crate) fn head_address(&self, head_index: usize) -> &str {
        &self.heads[head_index % self.heads.len()]
    }

    pub(crate) fn current(&self) -> Option<Session> {
        self.session.borrow().clone()
    }

    pub(crate) fn set_session(&self, s: Option<Session>) {
        self.session.send_replace(s);
    }

    async fn register_once(&self, head_index: usize, request_id: &str) -> Result<Session> {
        let mut client = self.client(head_index)?;
        let r = &self.registration;
        let req = pb::RegisterWorkerRequest {
            address: r.address.clone(),
            pid: r.pid,
            resources: Some(pb::Resources {
                cpus: r.cpus,
                memory_bytes: r.memory_bytes,
                labels: r.labels.clone(),
            }),
            arena_capacity: r.arena_capacity,
            request_id: request_id.to_string(),
            functions: r.functions.clone(),
            actor_classes: r.actor_classes.clone(),
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT, client.register_worker(req))
            .await
            .map_err(|_| WorkerError::Head {
                context: "registering".into(),
                message: "timed out".into(),
            })?
            .map_err(|s| head_error("registering", s))?
            .into_inner();
        let worker_id = WorkerId::parse(&reply.worker_id).map_err(|e| WorkerError::Head {
            context: "registering".into(),
            message: e.to_string(),
        })?;
        // A head that names no interval gets the default lease's.
        let interval = match reply.heartbeat_interval_ms {
            0 => Timings::default().heartbeat_interval(),
            ms => Duration::from_millis(ms),
        };
        Ok(Session {
            client,
            head_index,
            worker_id,
            interval,
        })
    }

    /// Register, trying each head in turn (starting after `start`) with backoff until one
    /// accepts. Never gives up; cancel it to stop. Publishes the new session.
    pub(crate) async fn register(&self, start: usize) -> WorkerId {
        let request_id = hex::encode(rand::random::<[u8; 16]>());
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            for k in 0..self.heads.len() {
                let i = (start + k) % self.heads.len();
                match self.register_once(i, &request_id).await {
                    Ok(s) => {
                        let id = s.worker_id;
                        tracing::info!(worker_id = %id, head = %self.heads[i], "registered with the head");
                        self.set_session(Some(s));
                        self.touch();
                        return id;
                    }
                    Err(e) => {
                        tracing::warn!(head = %self.heads[i], error = %e, "registration failed")
                    }
                }
            }
            backoff.wait().await;
        }
    }

    /// The current session, waiting a little for one to exist.
    pub(crate) async fn session(&self) -> Result<Session> {
        let mut rx = self.session.subscribe();
        let waited = tokio::time::timeout(self.session_wait, rx.wait_for(|s| s.is_some())).await;
        match waited {
            Ok(Ok(s)) => s.clone().ok_or(WorkerError::ShuttingDown),
            _ => Err(WorkerError::Head {
                context: "reporting".into(),
                message: "not registered with any head".into(),
            }),
        }
    }

    /// Report a new copy to the leader (following it across elections).
    pub async fn report_object(
        &self,
        id: ObjectId,
        meta: StoredMeta,
        kind: ReportedCopy,
    ) -> Result<()> {
        let context = format!("reporting object {id}");
        let kind = match kind {
            ReportedCopy::Put => PbCopyKind::Put,
            ReportedCopy::Pulled => PbCopyKind::Pulled,
        };
        self.call_leader(&context, |mut client, worker_id| {
            let req = pb::ReportObjectRequest {
                worker_id: worker_id.hex(),
                object_id: id.hex(),
                size: meta.size,
                crc32: meta.crc32,
                kind: kind as i32,
            };
            async move { client.report_object(req).await }
        })
        .await
        .map(|_| ())
    }

    /// Report removed copies (evictions) to the leader.
    pub async fn report_removed(&self, ids: &[ObjectId], reason: &str) -> Result<()> {
        let object_ids: Vec<String> = ids.iter().map(|i| i.hex()).collect();
        self.call_leader("reporting removed objects", |mut client, worker_id| {
            let req = pb::ReportObjectsRemovedRequest {
                worker_id: worker_id.hex(),
                object_ids: object_ids.clone(),
                reason: reason.to_string(),
            };
            async move { client.report_objects_removed(req).await }
        })
        .await
        .map(|_| ())
    }
}

impl ObjectReporter for std::sync::Arc<HeadLink> {
    fn object_added(
        &self,
        id: ObjectId,
        meta: StoredMeta,
        kind: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>> {
        let link = std::sync::Arc::clone(self);
        Box::pin(async move { link.report_object(id, meta, kind).await })
    }

    fn registered_as(&self) -> BoxFuture<'static, Option<WorkerId>> {
        let link = std::sync::Arc::clone(self);
        Box::pin(async move { link.session().await.ok().map(|s| s.worker_id) })
    }
}

#[cfg(test)]
pub(crate) mod fake_head;
#[cfg(test)]
mod tests;
