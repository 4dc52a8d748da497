//! Registry dispatch with fake hosts: a construction goes to the first host serving the class,
//! calls and streams to the host owning the actor, unknown classes and actors to the fallback,
//! and a stop to every host.

use std::collections::HashSet;
use std::sync::Mutex;

use futures::StreamExt;
use xnai_proto::ids::ObjectId;

use super::*;
use crate::arena::{Arena, ArenaConfig, StoredMeta};
use crate::executor::GrpcPuller;
use crate::functions::FunctionRegistry;
use crate::head_link::{ObjectReporter, ReportedCopy};

struct NoHead;

impl ObjectReporter for NoHead {
    fn object_added(
        &self,
        _id: ObjectId,
        _m: StoredMeta,
        _k: ReportedCopy,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A host of one class that answers every call with its own name.
struct Fake {
    name: &'static str,
    class: &'static str,
    live: Mutex<HashSet<ActorId>>,
}

impl Fake {
    fn new(name: &'static str, class: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            class,
            live: Mutex::new(HashSet::new()),
        })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<ActorId>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClassHost for Fake {
    fn serves(&self, class: &str) -> bool {
        class == self.class
    }

    fn owns(&self, id: &ActorId) -> bool {
        self.live().contains(id)
    }

    fn start<'a>(
        &'a self,
        id: ActorId,
        class: &'a str,
        _args: Vec<TaskArgSpec>,
        _ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<std::result::Result<(), String>>> {
        Box::pin(async move {
            if class != self.class {
                return Ok(Err(format!("{} cannot build {class}", self.name)));
            }
            self.live().insert(id);
            Ok(Ok(()))
        })
    }

    fn call(
        &self,
        id: ActorId,
        method: String,
        _args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<MethodResult>> {
        let reply = if self.owns(&id) {
            Ok(Bytes::from(format!("{}.{method}", self.name)))
        } else {
            Err(format!("{} has no actor {id}", self.name))
        };
        Box::pin(async move { Ok(reply) })
    }

    fn stop(&self, id: &ActorId) -> bool {
        self.live().remove(id)
    }
}

fn context(dir: &std::path::Path) -> StartContext {
    let (arena, _evictions) = Arena::open(ArenaConfig {
        dir: Some(dir.join("arena")),
        capacity: 1 << 20,
        spill: None,
    })
    .expect("arena");
    let token = xnai_proto::auth::TokenInject::new("t").expect("token");
    let executor = Executor::new(
        arena.clone(),
        FunctionRegistry::new(),
        Arc::new(GrpcPuller::new(token)),
        Arc::new(NoHead),
    );
    StartContext {
        executor,
        arena_dir: arena.dir().to_path_buf(),
    }
}

async fn text(stream: ChunkStream) -> Vec<Option<pb::actor_stream_chunk::Kind>> {
    stream.map(|c| c.ok().and_then(|c| c.kind)).collect().await
}

#[tokio::test]
async fn the_registry_dispatches_by_class_and_by_owner() {
    tracing::info!("--- phase: a fallback host and one added host");
    let dir = tempfile::tempdir().expect("tempdir");
    let fallback = Fake::new("fallback", "counter");
    let special = Fake::new("special", "special");
    let mut hosts = ClassHosts::new(fallback.clone(), context(dir.path()));
    hosts.add(special.clone());
    let (a, b) = (ActorId(1 << 8), ActorId(2 << 8));

    tracing::info!("--- phase: each class is built by the host serving it");
    assert_eq!(hosts.start(a, "special", vec![]).await.ok(), Some(Ok(())));
    assert_eq!(hosts.start(b, "counter", vec![]).await.ok(), Some(Ok(())));
    assert!(special.owns(&a) && fallback.owns(&b));
    let unknown = hosts.start(ActorId(3 << 8), "nope", vec![]).await.ok();
    assert_eq!(unknown, Some(Err("fallback cannot build nope".into())));

    tracing::info!("--- phase: calls and streams reach the owner; strangers the fallback");
    let call = |id, m: &str| hosts.call(id, m.to_string(), vec![]);
    assert_eq!(call(a, "m").await.ok(), Some(Ok(Bytes::from("special.m"))));
    assert_eq!(call(b, "m").await.ok(), Some(Ok(Bytes::from("fallback.m"))));
    let stranger = ActorId(4 << 8);
    assert_eq!(
        call(stranger, "m").await.ok(),
        Some(Err(format!("fallback has no actor {stranger}")))
    );
    let streamed = hosts
        .call_stream(a, "s".into(), vec![])
        .await
        .expect("stream");
    assert_eq!(
        text(streamed).await,
        vec![Some(pb::actor_stream_chunk::Kind::Value(
            b"special.s".to_vec()
        ))]
    );

    tracing::info!("--- phase: a stop reaches every host");
    assert!(hosts.stop(&a));
    assert!(!special.owns(&a));
    assert!(!hosts.stop(&a), "already stopped");
}
