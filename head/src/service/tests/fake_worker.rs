//! A fake `Worker` gRPC server for the head's end-to-end test: `echo` stores its joined
//! arguments' length, other functions fail with an application error, actors always start.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use xnai_proto::auth::TokenCheck;
use xnai_proto::pb;

use super::TOKEN;

struct FakeWorker;

#[tonic::async_trait]
impl pb::worker_server::Worker for FakeWorker {
    async fn execute_task(
        &self,
        req: Request<pb::ExecuteTaskRequest>,
    ) -> Result<Response<pb::ExecuteTaskReply>, Status> {
        let r = req.into_inner();
        let words: Vec<String> = r
            .args
            .iter()
            .map(|a| match &a.kind {
                Some(pb::task_arg::Kind::Value(v)) => String::from_utf8_lossy(v).into_owned(),
                _ => String::new(),
            })
            .collect();
        let result = match r.function.as_str() {
            "echo" => {
                let size = words.join(" ").len() as u64;
                pb::execute_task_reply::Result::Stored(pb::StoredObject { size, crc32: 1 })
            }
            _ => pb::execute_task_reply::Result::Error(format!("{}: refused", r.function)),
        };
        Ok(Response::new(pb::ExecuteTaskReply {
            result: Some(result),
        }))
    }
    async fn start_actor(
        &self,
        _: Request<pb::StartActorRequest>,
    ) -> Result<Response<pb::StartActorReply>, Status> {
        Ok(Response::new(pb::StartActorReply {
            error: String::new(),
        }))
    }
    async fn stop_actor(
        &self,
        _: Request<pb::StopActorRequest>,
    ) -> Result<Response<pb::StopActorReply>, Status> {
        Ok(Response::new(pb::StopActorReply {}))
    }
    async fn call_actor(
        &self,
        _: Request<pb::CallActorRequest>,
    ) -> Result<Response<pb::CallActorReply>, Status> {
        Err(Status::unimplemented("not used by the head"))
    }
    async fn put_object(
        &self,
        _: Request<tonic::Streaming<pb::PutObjectChunk>>,
    ) -> Result<Response<pb::PutObjectReply>, Status> {
        Err(Status::unimplemented("not used by the head"))
    }
    type FetchObjectStream = futures::stream::Empty<Result<pb::ObjectChunk, Status>>;
    async fn fetch_object(
        &self,
        _: Request<pb::FetchObjectRequest>,
    ) -> Result<Response<Self::FetchObjectStream>, Status> {
        Err(Status::unimplemented("not used by the head"))
    }
    async fn delete_objects(
        &self,
        _: Request<pb::DeleteObjectsRequest>,
    ) -> Result<Response<pb::DeleteObjectsReply>, Status> {
        Ok(Response::new(pb::DeleteObjectsReply {}))
    }
    type CallActorStreamStream = futures::stream::Empty<Result<pb::ActorStreamChunk, Status>>;
    async fn call_actor_stream(
        &self,
        _: Request<pb::CallActorRequest>,
    ) -> Result<Response<Self::CallActorStreamStream>, Status> {
        Err(Status::unimplemented("not used by the head"))
    }
}

/// Serve the fake worker (behind the token check) on a free port; returns its address.
pub(super) async fn start_fake_worker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let svc = InterceptedService::new(
        pb::worker_server::WorkerServer::new(FakeWorker),
        TokenCheck::new(TOKEN),
    );
    tokio::spawn(
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}
