//! The Worker service over a real in-process tonic server on 127.0.0.1:0 with a fake head:
//! put/fetch round trip, size mismatch, missing objects, malformed ids, actors and tasks.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;
use xnai_proto::ids::{ObjectId, TaskId};
use xnai_proto::pb::worker_client::WorkerClient;
use xnai_proto::pb::worker_server::WorkerServer;

use super::*;
use crate::actors::ClassRegistry;
use crate::arena::{ArenaConfig, StoredMeta};
use crate::error::Result;
use crate::executor::GrpcPuller;
use crate::functions::FunctionRegistry;
use crate::head_link::ReportedCopy;

struct OkHead;

impl ObjectReporter for OkHead {
    fn object_added(
        &self,
        _id: ObjectId,
        _m: StoredMeta,
        _k: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

async fn start() -> (WorkerClient<Channel>, Arena, tempfile::TempDir) {
    let (c, arena, root, _addr) = start_with_addr().await;
    (c, arena, root)
}

async fn start_with_addr() -> (WorkerClient<Channel>, Arena, tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let capacity = 64 << 20;
    let (arena, _ev) = Arena::open(ArenaConfig {
        dir: Some(root.path().join("a")),
        capacity,
        spill: None,
    })
    .unwrap();
    let reporter: Arc<dyn ObjectReporter> = Arc::new(OkHead);
    let token = xnai_proto::auth::TokenInject::new("t").unwrap();
    let exec = Executor::new(
        arena.clone(),
        FunctionRegistry::with_builtins(capacity),
        Arc::new(GrpcPuller::new(token)),
        Arc::clone(&reporter),
    );
    let actors = Arc::new(ActorHost::start(ClassRegistry::with_builtins(), 1).unwrap());
    let svc = WorkerService::new(exec, actors, arena.clone(), reporter);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(WorkerServer::new(svc))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (WorkerClient::new(channel), arena, root, addr.to_string())
}

fn put_stream(
    size: u64,
    chunks: Vec<Vec<u8>>,
) -> impl futures::Stream<Item = pb::PutObjectChunk> + Send + 'static {
    use pb::put_object_chunk::Kind;
    let header = pb::PutObjectChunk {
        kind: Some(Kind::Header(pb::PutObjectHeader {
            size,
            crc32: None,
            object_id: String::new(),
        })),
    };
    let data = chunks.into_iter().map(|d| pb::PutObjectChunk {
        kind: Some(Kind::Data(crate::convert::to_wire(bytes::Bytes::from(d)))),
    });
    futures::stream::iter(std::iter::once(header).chain(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_fetch_round_trips() {
    let (mut c, _arena, _root) = start().await;
    let data = xnai_sdk::builtins::fill_bytes(3 << 20 | 17, 9);
    let chunks: Vec<Vec<u8>> = data.chunks(1 << 20).map(|c| c.to_vec()).collect();
    let reply = c
        .put_object(put_stream(data.len() as u64, chunks))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.size, data.len() as u64);
    assert_eq!(reply.crc32, crc32fast::hash(&data));
    let mut s = c
        .fetch_object(pb::FetchObjectRequest {
            object_id: reply.object_id,
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    let mut first = None;
    while let Some(chunk) = s.message().await.unwrap() {
        first.get_or_insert((chunk.total_size, chunk.crc32));
        assert_eq!(chunk.offset, got.len() as u64);
        got.extend_from_slice(&chunk.data);
    }
    assert_eq!(first, Some((data.len() as u64, crc32fast::hash(&data))));
    assert!(got == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_puts_and_fetches_get_clear_statuses() {
    let (mut c, arena, _root) = start().await;
    let e = c
        .put_object(put_stream(10, vec![vec![1; 4]]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = c
        .put_object(put_stream(3, vec![vec![1; 4]]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c.put_object(put_stream(1 << 30, vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message()
            .starts_with("arena full: need 1.0 GiB, free 64.0 MiB of 64.0 MiB"),
        "{}",
        e.message()
    );
    assert_eq!(arena.usage().objects, 0);
    assert_eq!(arena.usage().reserved, 0);
    let e = c
        .fetch_object(pb::FetchObjectRequest {
            object_id: ObjectId::random().hex(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .fetch_object(pb::FetchObjectRequest {
            object_id: "zz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("malformed object id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_and_tasks_over_grpc() {
    let (mut c, arena, _root) = start().await;
    let actor_id = xnai_proto::ids::ActorId::random().hex();
    let r = c
        .start_actor(pb::StartActorRequest {
            actor_id: actor_id.clone(),
            class: "counter".into(),
            args: vec![],
            max_concurrency: 0,
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().error, "");
    for want in ["1", "2", "3"] {
        let r = c
            .call_actor(pb::CallActorRequest {
                actor_id: actor_id.clone(),
                method: "incr".into(),
                args: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.result,
            Some(pb::call_actor_reply::Result::Value(
                crate::convert::to_wire(bytes::Bytes::copy_from_slice(want.as_bytes()))
            ))
        );
    }
    c.stop_actor(pb::StopActorRequest {
        actor_id: actor_id.clone(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = c
        .call_actor(pb::CallActorRequest {
            actor_id,
            method: "get".into(),
            args: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let task = TaskId::random();
    let arg = pb::TaskArg {
        kind: Some(pb::task_arg::Kind::Value(crate::convert::to_wire(
            bytes::Bytes::from_static(b"hi"),
        ))),
    };
    let req = pb::ExecuteTaskRequest {
        task_id: task.hex(),
        object_id: task.return_object().hex(),
        function: "echo".into(),
        args: vec![arg],
        cpus: None,
    };
    let r = c.execute_task(req).await.unwrap().into_inner();
    let stored = pb::StoredObject {
        size: 2,
        crc32: crc32fast::hash(b"hi"),
    };
    assert_eq!(
        r.result,
        Some(pb::execute_task_reply::Result::Stored(stored))
    );
    c.delete_objects(pb::DeleteObjectsRequest {
        object_ids: vec![task.return_object().hex()],
        worker_id: String::new(),
    })
    .await
    .unwrap();
    assert!(!arena.contains(&task.return_object()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_pulls_its_argument_from_a_peer() {
    let (mut a, _arena_a, _ra, addr_a) = start_with_addr().await;
    let (mut b, arena_b, _rb, _addr_b) = start_with_addr().await;
    let data = xnai_sdk::builtins::fill_bytes((2 << 20) + 5, 1);
    let chunks: Vec<Vec<u8>> = data.chunks(1 << 20).map(|c| c.to_vec()).collect();
    let put = a
        .put_object(put_stream(data.len() as u64, chunks))
        .await
        .unwrap()
        .into_inner();
    let location = pb::ObjectLocation {
        worker_id: String::new(),
        address: addr_a,
    };
    let object = pb::ObjectRefArg {
        object_id: put.object_id.clone(),
        size: put.size,
        crc32: put.crc32,
        locations: vec![location],
    };
    let task = TaskId::random();
    let req = pb::ExecuteTaskRequest {
        task_id: task.hex(),
        object_id: task.return_object().hex(),
        function: "digest".into(),
        args: vec![pb::TaskArg {
            kind: Some(pb::task_arg::Kind::Object(object)),
        }],
        cpus: Some(1.0),
    };
    let r = b.execute_task(req).await.unwrap().into_inner();
    assert!(
        matches!(
            r.result,
            Some(pb::execute_task_reply::Result::Stored(pb::StoredObject {
                size: 64,
                ..
            }))
        ),
        "{r:?}"
    );
    let got = arena_b.get(&task.return_object()).unwrap();
    use sha2::Digest;
    assert_eq!(
        &got.bytes()[..],
        hex::encode(sha2::Sha256::digest(&data)).as_bytes()
    );
    let pulled = ObjectId::parse(&put.object_id).unwrap();
    assert_eq!(
        arena_b.meta(&pulled).map(|m| m.crc32),
        Some(put.crc32),
        "pulled copy kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_put_is_failed_and_its_reservation_released() {
    let (mut c, arena, _root) = start().await;
    arena.set_put_idle_timeout(Duration::from_millis(300));
    tracing::info!("--- phase: a put sends its header and one chunk, then nothing");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut msgs = put_stream(1000, vec![vec![7; 10]]);
    while let Some(m) = futures::StreamExt::next(&mut msgs).await {
        tx.send(m).await.unwrap();
    }
    let call = tokio::spawn(async move {
        c.put_object(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while arena.usage().reserved != 1000 {
        assert!(tokio::time::Instant::now() < deadline, "never reserved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::info!("--- phase: after the idle timeout it fails and the reservation is gone");
    let e = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the put ends by itself")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("idle timeout"), "{}", e.message());
    assert_eq!(arena.usage().reserved, 0);
    assert_eq!(
        std::fs::read_dir(arena.dir()).unwrap().count(),
        0,
        "no temp file left"
    );
    drop(tx);
}
