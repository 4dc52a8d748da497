//! A fake head (`WorkerRegistry` only) for unit tests: records every call, hands out worker ids
//! and can be told to answer heartbeats with `reregister`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use xnai_proto::ids::WorkerId;
use xnai_proto::pb;
use xnai_proto::pb::worker_registry_server::{WorkerRegistry, WorkerRegistryServer};

/// What the fake head saw.
#[derive(Default)]
pub struct Seen {
    pub registrations: Vec<pb::RegisterWorkerRequest>,
    pub heartbeats: Vec<pb::HeartbeatRequest>,
    /// When each heartbeat arrived (tokio time, so tests may pause it).
    pub heartbeat_times: Vec<tokio::time::Instant>,
    pub objects: Vec<pb::ReportObjectRequest>,
    pub removed: Vec<pb::ReportObjectsRemovedRequest>,
}

/// The fake registry service; clone it to keep a handle on what it saw.
#[derive(Clone)]
pub struct FakeHead {
    pub seen: Arc<Mutex<Seen>>,
    pub reregister: Arc<AtomicBool>,
    /// The heartbeat interval it names when a worker registers (0: none).
    pub interval_ms: Arc<AtomicU64>,
}

impl Default for FakeHead {
    fn default() -> Self {
        Self {
            seen: Arc::default(),
            reregister: Arc::default(),
            interval_ms: Arc::new(AtomicU64::new(50)),
        }
    }
}

impl FakeHead {
    /// Serve on 127.0.0.1:0 with the token check; returns the address.
    pub async fn serve(&self, token: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let svc = WorkerRegistryServer::with_interceptor(
            self.clone(),
            xnai_proto::auth::TokenCheck::new(token),
        );
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        addr
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

#[tonic::async_trait]
impl WorkerRegistry for FakeHead {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerReply>, Status> {
        self.seen().registrations.push(request.into_inner());
        self.reregister.store(false, Ordering::SeqCst);
        Ok(Response::new(pb::RegisterWorkerReply {
            worker_id: WorkerId::random().hex(),
            heartbeat_interval_ms: self.interval_ms.load(Ordering::SeqCst),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let mut seen = self.seen();
        seen.heartbeats.push(request.into_inner());
        seen.heartbeat_times.push(tokio::time::Instant::now());
        drop(seen);
        Ok(Response::new(pb::HeartbeatReply {
            reregister: self.reregister.load(Ordering::SeqCst),
        }))
    }

    async fn report_object(
        &self,
        request: Request<pb::ReportObjectRequest>,
    ) -> Result<Response<pb::ReportObjectReply>, Status> {
        self.seen().objects.push(request.into_inner());
        Ok(Response::new(pb::ReportObjectReply {}))
    }

    async fn report_objects_removed(
        &self,
        request: Request<pb::ReportObjectsRemovedRequest>,
    ) -> Result<Response<pb::ReportObjectsRemovedReply>, Status> {
        self.seen().removed.push(request.into_inner());
        Ok(Response::new(pb::ReportObjectsRemovedReply {}))
    }
}
