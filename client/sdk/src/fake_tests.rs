//! SDK tests against in-process fake Head and Worker servers on 127.0.0.1:0: chunked put and
//! get round trips (memory and files), CRC-32 checking with fallback to the next copy, and the
//! token on every call.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};
use xnai_proto::auth::TokenCheck;
use xnai_proto::ids::ObjectId;
use xnai_proto::limits::CHUNK_BYTES;
use xnai_proto::pb::{self, head_server, worker_server};

use super::{Client, ClientConfig, Error};

const TOKEN: &str = "test-token";

#[derive(Default)]
struct Shared {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Addresses LocateObject lists, in order.
    locations: Mutex<Vec<String>>,
    put_target: Mutex<String>,
}

#[derive(Clone)]
struct FakeHead(Arc<Shared>);
#[derive(Clone)]
struct FakeWorker {
    shared: Arc<Shared>,
    corrupt: bool,
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ObjectChunk, Status>> + Send>>;

#[tonic::async_trait]
impl worker_server::Worker for FakeWorker {
    type FetchObjectStream = ChunkStream;
    type CallActorStreamStream =
        Pin<Box<dyn Stream<Item = Result<pb::ActorStreamChunk, Status>> + Send>>;
    async fn call_actor_stream(
        &self,
        _: Request<pb::CallActorRequest>,
    ) -> Result<Response<Self::CallActorStreamStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn execute_task(
        &self,
        _: Request<pb::ExecuteTaskRequest>,
    ) -> Result<Response<pb::ExecuteTaskReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn start_actor(
        &self,
        _: Request<pb::StartActorRequest>,
    ) -> Result<Response<pb::StartActorReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn stop_actor(
        &self,
        _: Request<pb::StopActorRequest>,
    ) -> Result<Response<pb::StopActorReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn call_actor(
        &self,
        _: Request<pb::CallActorRequest>,
    ) -> Result<Response<pb::CallActorReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn put_object(
        &self,
        req: Request<Streaming<pb::PutObjectChunk>>,
    ) -> Result<Response<pb::PutObjectReply>, Status> {
        use pb::put_object_chunk::Kind;
        let mut s = req.into_inner();
        let Some(pb::PutObjectChunk {
            kind: Some(Kind::Header(h)),
        }) = s.message().await?
        else {
            return Err(Status::invalid_argument("header first"));
        };
        let mut data = Vec::new();
        while let Some(c) = s.message().await? {
            match c.kind {
                Some(Kind::Data(d)) if d.len() <= CHUNK_BYTES => data.extend_from_slice(&d),
                _ => return Err(Status::invalid_argument("bad chunk")),
            }
        }
        let crc = crc32fast::hash(&data);
        if data.len() as u64 != h.size || h.crc32.is_some_and(|c| c != crc) {
            return Err(Status::invalid_argument("size or crc mismatch"));
        }
        let id = ObjectId::random().hex();
        self.shared.objects.lock().unwrap().insert(id.clone(), data);
        Ok(Response::new(pb::PutObjectReply {
            object_id: id,
            size: h.size,
            crc32: crc,
        }))
    }
    async fn fetch_object(
        &self,
        req: Request<pb::FetchObjectRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let id = req.into_inner().object_id;
        let data = self.shared.objects.lock().unwrap().get(&id).cloned();
        let data = data.ok_or_else(|| Status::not_found(format!("no object {id}")))?;
        let crc = crc32fast::hash(&data);
        let mut chunks = Vec::new();
        for (i, part) in data.chunks(CHUNK_BYTES).enumerate() {
            let mut part = part.to_vec();
            if self.corrupt && i == 0 {
                part[0] ^= 1;
            }
            let first = i == 0;
            chunks.push(Ok(pb::ObjectChunk {
                offset: (i * CHUNK_BYTES) as u64,
                data: part.into(),
                total_size: if first { data.len() as u64 } else { 0 },
                crc32: if first { crc } else { 0 },
            }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
    async fn delete_objects(
        &self,
        _: Request<pb::DeleteObjectsRequest>,
    ) -> Result<Response<pb::DeleteObjectsReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

#[tonic::async_trait]
impl head_server::Head for FakeHead {
    async fn submit_task(
        &self,
        _: Request<pb::SubmitTaskRequest>,
    ) -> Result<Response<pb::SubmitTaskReply>, Status> {
        Err(Status::invalid_argument("unknown function \"nope\""))
    }
    async fn locate_object(
        &self,
        req: Request<pb::LocateObjectRequest>,
    ) -> Result<Response<pb::ObjectInfo>, Status> {
        let id = req.into_inner().object_id;
        let objects = self.0.objects.lock().unwrap();
        let data = objects
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("no object {id}")))?;
        let locations = self
            .0
            .locations
            .lock()
            .unwrap()
            .iter()
            .map(|a| pb::ObjectLocation {
                worker_id: "w".into(),
                address: a.clone(),
            })
            .collect();
        Ok(Response::new(pb::ObjectInfo {
            object_id: id,
            state: pb::ObjectState::Ready as i32,
            size: data.len() as u64,
            crc32: crc32fast::hash(data),
            locations,
            ..Default::default()
        }))
    }
    async fn wait_objects(
        &self,
        _: Request<pb::WaitObjectsRequest>,
    ) -> Result<Response<pb::WaitObjectsReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn pick_put_target(
        &self,
        _: Request<pb::PickPutTargetRequest>,
    ) -> Result<Response<pb::ObjectLocation>, Status> {
        let address = self.0.put_target.lock().unwrap().clone();
        Ok(Response::new(pb::ObjectLocation {
            worker_id: "w".into(),
            address,
        }))
    }
    async fn create_actor(
        &self,
        _: Request<pb::CreateActorRequest>,
    ) -> Result<Response<pb::CreateActorReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_actor(
        &self,
        _: Request<pb::GetActorRequest>,
    ) -> Result<Response<pb::ActorInfo>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn list_actors(
        &self,
        _: Request<pb::ListActorsRequest>,
    ) -> Result<Response<pb::ListActorsReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn kill_actor(
        &self,
        _: Request<pb::KillActorRequest>,
    ) -> Result<Response<pb::KillActorReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusReply>, Status> {
        Ok(Response::new(pb::ClusterStatusReply::default()))
    }
    async fn add_head(
        &self,
        _: Request<pb::AddHeadRequest>,
    ) -> Result<Response<pb::AddHeadReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_head(
        &self,
        _: Request<pb::RemoveHeadRequest>,
    ) -> Result<Response<pb::RemoveHeadReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn open_session(
        &self,
        _: Request<pb::OpenSessionRequest>,
    ) -> Result<Response<pb::OpenSessionReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn keep_alive(
        &self,
        _: Request<pb::KeepAliveRequest>,
    ) -> Result<Response<pb::KeepAliveReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn release_objects(
        &self,
        _: Request<pb::ReleaseObjectsRequest>,
    ) -> Result<Response<pb::ReleaseObjectsReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves a router on 127.0.0.1:0 and returns its address.
async fn serve(router: tonic::transport::server::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// A fake head, a good worker and a corrupting worker; returns (shared, head, good, bad).
async fn start() -> (Arc<Shared>, String, String, String) {
    let shared = Arc::new(Shared::default());
    let check = TokenCheck::new(TOKEN);
    let mut addrs = Vec::new();
    for corrupt in [false, true] {
        let w = FakeWorker {
            shared: shared.clone(),
            corrupt,
        };
        let svc = worker_server::WorkerServer::with_interceptor(w, check.clone());
        addrs.push(serve(tonic::transport::Server::builder().add_service(svc)).await);
    }
    let head = head_server::HeadServer::with_interceptor(FakeHead(shared.clone()), check);
    let head = serve(tonic::transport::Server::builder().add_service(head)).await;
    *shared.put_target.lock().unwrap() = addrs[0].clone();
    (shared, head, addrs[0].clone(), addrs[1].clone())
}

fn data(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn put_get_round_trip_checks_crc_and_falls_back() {
    let (shared, head, good, bad) = start().await;
    let client = Client::connect(ClientConfig::new(vec!["127.0.0.1:1".into(), head], TOKEN))
        .await
        .unwrap();
    let payload = data(3 * CHUNK_BYTES + 12345);
    let r = client.put(payload.clone()).await.unwrap();
    *shared.locations.lock().unwrap() = vec![bad.clone(), good.clone()];
    assert_eq!(
        client.get(&r, Duration::from_secs(5)).await.unwrap(),
        payload
    );
    *shared.locations.lock().unwrap() = vec![bad];
    let e = client.get(&r, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("crc32"), "{e}");

    *shared.locations.lock().unwrap() = vec![good];
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in.bin");
    std::fs::write(&src, data(2 * CHUNK_BYTES + 7)).unwrap();
    let r = client.put_file(&src).await.unwrap();
    let dst = tmp.path().join("out.bin");
    let n = client
        .get_to_file(&r, Duration::from_secs(5), &dst)
        .await
        .unwrap();
    assert_eq!(n, 2 * CHUNK_BYTES as u64 + 7);
    assert_eq!(std::fs::read(&dst).unwrap(), std::fs::read(&src).unwrap());
    let empty = client.put(Bytes::new()).await.unwrap();
    assert!(
        client
            .get(&empty, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn statuses_keep_code_and_token_is_checked() {
    let (_shared, head, _, _) = start().await;
    let client = Client::connect(ClientConfig::new(vec![head.clone()], TOKEN))
        .await
        .unwrap();
    let e = client
        .submit("nope", vec![], Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument));
    assert_eq!(e.to_string(), "unknown function \"nope\"");
    // With a session, a wrong token fails at connect (OpenSession); without, at the first call.
    let Err(e) = Client::connect(ClientConfig::new(vec![head.clone()], "wrong")).await else {
        panic!("a wrong token must fail at connect");
    };
    assert_eq!(e.code(), Some(tonic::Code::Unauthenticated));
    let wrong = Client::connect(ClientConfig {
        session_lease: None,
        ..ClientConfig::new(vec![head], "wrong")
    })
    .await
    .unwrap();
    let e = wrong.status().await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Unauthenticated));
    let none = Client::connect(ClientConfig::new(vec!["127.0.0.1:1".into()], TOKEN)).await;
    assert!(matches!(none, Err(Error::NoHead { .. })));
}
