//! The `Worker` gRPC service: thin handlers that decode ([`crate::convert`]), call the
//! executor, the actor hosts ([`crate::hosts::ClassHosts`]) or the arena, and encode. Object
//! streaming lives in [`objects`], the same-host shared-memory service in [`local`].

mod local;
mod objects;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use xnai_proto::pb;

use crate::actors::ActorHost;
use crate::arena::Arena;
use crate::convert;
use crate::executor::Executor;
use crate::head_link::ObjectReporter;
use crate::hosts::{ClassHost, ClassHosts, StartContext};
use crate::inference_actor::InferenceActors;
use crate::retrieval_actor::RetrievalActors;

use crate::hosts::ChunkStream as ActorChunkStream;
pub use local::LocalArenaService;

/// The worker's gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct WorkerService {
    executor: Executor,
    /// Every kind of actor host; the actor handlers dispatch through it.
    hosts: Arc<ClassHosts>,
    arena: Arena,
    reporter: Arc<dyn ObjectReporter>,
}

impl WorkerService {
    /// A service over the worker's parts, hosting actix actors in `actors`; `reporter`
    /// acknowledges put objects to the head.
    pub fn new(
        executor: Executor,
        actors: Arc<ActorHost>,
        arena: Arena,
        reporter: Arc<dyn ObjectReporter>,
    ) -> Self {
        let ctx = StartContext {
            executor: executor.clone(),
            arena_dir: arena.dir().to_path_buf(),
        };
        Self {
            executor,
            hosts: Arc::new(ClassHosts::new(actors, ctx)),
            arena,
            reporter,
        }
    }

    /// Also host actors in `host`, asked before the actix host. Call before cloning.
    pub fn with_host(mut self, host: Arc<dyn ClassHost>) -> Self {
        match Arc::get_mut(&mut self.hosts) {
            Some(hosts) => hosts.add(host),
            None => tracing::error!("a host was added to a worker service already shared"),
        }
        self
    }

    /// Also host `retrieval` actors ([`crate::retrieval_actor`]).
    pub fn with_retrieval(self, retrieval: Arc<RetrievalActors>) -> Self {
        self.with_host(retrieval)
    }

    /// Also host `inference` actors ([`crate::inference_actor`]).
    pub fn with_inference(self, inference: Arc<InferenceActors>) -> Self {
        self.with_host(inference)
    }
}

/// The FetchObject response stream.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ObjectChunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::worker_server::Worker for WorkerService {
    async fn execute_task(
        &self,
        request: Request<pb::ExecuteTaskRequest>,
    ) -> Result<Response<pb::ExecuteTaskReply>, Status> {
        let spec = convert::task_spec(request.into_inner())?;
        let outcome = self.executor.execute(spec).await?;
        Ok(Response::new(convert::task_reply(outcome)))
    }

    async fn start_actor(
        &self,
        request: Request<pb::StartActorRequest>,
    ) -> Result<Response<pb::StartActorReply>, Status> {
        let req = request.into_inner();
        let id = convert::actor_id(&req.actor_id)?;
        let class = convert::name("class", &req.class)?;
        let span = tracing::info_span!("start_actor", actor_id = %id, class = %class);
        async {
            let args = convert::task_args(req.args)?;
            let built = self.hosts.start(id, &class, args).await?;
            Ok(Response::new(pb::StartActorReply {
                error: built.err().unwrap_or_default(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn stop_actor(
        &self,
        request: Request<pb::StopActorRequest>,
    ) -> Result<Response<pb::StopActorReply>, Status> {
        let id = convert::actor_id(&request.get_ref().actor_id)?;
        self.hosts.stop(&id);
        Ok(Response::new(pb::StopActorReply {}))
    }

    async fn call_actor(
        &self,
        request: Request<pb::CallActorRequest>,
    ) -> Result<Response<pb::CallActorReply>, Status> {
        let req = request.into_inner();
        let id = convert::actor_id(&req.actor_id)?;
        let method = convert::name("method", &req.method)?;
        let args = convert::call_args(req.args)?;
        let result = self.hosts.call(id, method, args).await?;
        Ok(Response::new(convert::call_reply(result)))
    }

    async fn put_object(
        &self,
        request: Request<Streaming<pb::PutObjectChunk>>,
    ) -> Result<Response<pb::PutObjectReply>, Status> {
        let reply = objects::put(&self.arena, self.reporter.as_ref(), request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    type FetchObjectStream = ChunkStream;

    async fn fetch_object(
        &self,
        request: Request<pb::FetchObjectRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let id = convert::object_id(&request.get_ref().object_id)?;
        Ok(Response::new(objects::fetch(&self.arena, id)?))
    }

    async fn delete_objects(
        &self,
        request: Request<pb::DeleteObjectsRequest>,
    ) -> Result<Response<pb::DeleteObjectsReply>, Status> {
        let req = request.into_inner();
        let ids = req
            .object_ids
            .iter()
            .map(|s| convert::object_id(s))
            .collect::<Result<Vec<_>, _>>()?;
        if !req.worker_id.is_empty() {
            let meant_for = convert::worker_id(&req.worker_id)?;
            let current = self.reporter.registered_as().await;
            if current != Some(meant_for) {
                let current = current.map_or_else(|| "none".to_string(), |id| id.to_string());
                tracing::info!(%meant_for, %current, count = ids.len(),
                    "ignored a delete for another registration of this worker");
                return Ok(Response::new(pb::DeleteObjectsReply {}));
            }
        }
        let gone = self.arena.delete(&ids);
        for id in &ids {
            self.executor.forget_object(id);
        }
        tracing::debug!(asked = ids.len(), deleted = gone.len(), "objects deleted");
        Ok(Response::new(pb::DeleteObjectsReply {}))
    }

    type CallActorStreamStream = ActorChunkStream;

    async fn call_actor_stream(
        &self,
        request: Request<pb::CallActorRequest>,
    ) -> Result<Response<ActorChunkStream>, Status> {
        let req = request.into_inner();
        let id = convert::actor_id(&req.actor_id)?;
        let method = convert::name("method", &req.method)?;
        let args = convert::call_args(req.args)?;
        let stream = self.hosts.call_stream(id, method, args).await?;
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod fence_tests;
#[cfg(test)]
mod tests;
