//! Actor hosts behind one trait: [`ClassHost`] is what the `Worker` service needs from any kind
//! of actor host (the actix host of [`crate::actors`], the `inference` and `retrieval` actors),
//! and [`ClassHosts`] is the registry its actor handlers dispatch through. A new kind of host
//! is one file implementing the trait plus one `ClassHosts::add`; no handler changes.

mod actix;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;
use tonic::Status;
use xnai_proto::ids::ActorId;
use xnai_proto::pb;
use xnai_proto::pb::actor_stream_chunk::Kind;

use crate::actors::MethodResult;
use crate::error::Result;
use crate::executor::{Executor, TaskArgSpec};

/// A `CallActorStream` response stream.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ActorStreamChunk, Status>> + Send>>;

/// The reply of a method that does not stream: one `value` or `error` chunk.
pub fn single(result: MethodResult) -> ChunkStream {
    let kind = match result {
        Ok(value) => Kind::Value(value.to_vec()),
        Err(text) => Kind::Error(text),
    };
    Box::pin(futures::stream::once(async move {
        Ok(pb::ActorStreamChunk { kind: Some(kind) })
    }))
}

/// What a host may use to construct an actor: the executor (to resolve and pin argument
/// objects, pulling them if needed) and the arena directory (where those objects are files).
#[derive(Clone)]
pub struct StartContext {
    /// The worker's executor.
    pub executor: Executor,
    /// The worker's arena directory.
    pub arena_dir: PathBuf,
}

/// One kind of actor host. Implementations are thread-safe and shared behind an `Arc`.
pub trait ClassHost: Send + Sync + 'static {
    /// Whether this host constructs actors of `class`.
    fn serves(&self, class: &str) -> bool;

    /// Whether actor `id` lives in this host.
    fn owns(&self, id: &ActorId) -> bool;

    /// Construct actor `id` of `class` from StartActor arguments. `Ok(Err(text))` is a
    /// constructor (application) error. Starting a live actor again is a no-op.
    fn start<'a>(
        &'a self,
        id: ActorId,
        class: &'a str,
        args: Vec<TaskArgSpec>,
        ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<std::result::Result<(), String>>>;

    /// Call `method` and answer with its whole result; `Ok(Err(text))` is the method's
    /// application error.
    fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<MethodResult>>;

    /// Call `method`, streaming its answer. By default: the whole result as one chunk.
    fn call_stream(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<ChunkStream>> {
        Box::pin(async move { Ok(single(self.call(id, method, args).await?)) })
    }

    /// Stop actor `id` if it lives here; returns whether it did.
    fn stop(&self, id: &ActorId) -> bool;
}

/// The worker's hosts, asked in the order they were added, then the fallback (the actix host,
/// which answers for unknown classes and actors with the usual errors). Thread-safe.
pub struct ClassHosts {
    hosts: Vec<Arc<dyn ClassHost>>,
    fallback: Arc<dyn ClassHost>,
    ctx: StartContext,
}

impl ClassHosts {
    /// Only the `fallback` host; `ctx` is handed to every construction.
    pub fn new(fallback: Arc<dyn ClassHost>, ctx: StartContext) -> Self {
        Self {
            hosts: Vec::new(),
            fallback,
            ctx,
        }
    }

    /// Also ask `host`, before the fallback.
    pub fn add(&mut self, host: Arc<dyn ClassHost>) {
        self.hosts.push(host);
    }

    fn for_class(&self, class: &str) -> &dyn ClassHost {
        self.hosts
            .iter()
            .find(|h| h.serves(class))
            .unwrap_or(&self.fallback)
            .as_ref()
    }

    fn owner(&self, id: &ActorId) -> &dyn ClassHost {
        self.hosts
            .iter()
            .find(|h| h.owns(id))
            .unwrap_or(&self.fallback)
            .as_ref()
    }

    /// Construct actor `id` in the host serving `class`.
    pub async fn start(
        &self,
        id: ActorId,
        class: &str,
        args: Vec<TaskArgSpec>,
    ) -> Result<std::result::Result<(), String>> {
        self.for_class(class)
            .start(id, class, args, &self.ctx)
            .await
    }

    /// Call a method of actor `id` in the host it lives in.
    pub async fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> Result<MethodResult> {
        self.owner(&id).call(id, method, args).await
    }

    /// Call a method of actor `id`, streaming.
    pub async fn call_stream(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> Result<ChunkStream> {
        self.owner(&id).call_stream(id, method, args).await
    }

    /// Stop actor `id` wherever it lives; returns whether any host had it.
    pub fn stop(&self, id: &ActorId) -> bool {
        let mut stopped = false;
        for host in self.hosts.iter().chain(std::iter::once(&self.fallback)) {
            stopped |= host.stop(id);
        }
        stopped
    }
}
