//! The `Worker` gRPC service: thin handlers that decode ([`crate::convert`]), call the
//! executor, actor host or arena, and encode. Object streaming lives in [`objects`], the
//! same-host shared-memory service in [`local`].

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
use crate::inference_actor::{self, InferenceActors};
use crate::retrieval_actor::{self, RetrievalActors};

pub use local::LocalArenaService;

/// The worker's gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct WorkerService {
    executor: Executor,
    actors: Arc<ActorHost>,
    arena: Arena,
    reporter: Arc<dyn ObjectReporter>,
    /// The `inference` actors, when the worker offers that class.
    inference: Option<Arc<InferenceActors>>,
    /// The `retrieval` actors, when the worker offers that class.
    retrieval: Option<Arc<RetrievalActors>>,
}

impl WorkerService {
    /// A service over the worker's parts; `reporter` acknowledges put objects to the head.
    pub fn new(
        executor: Executor,
        actors: Arc<ActorHost>,
        arena: Arena,
        reporter: Arc<dyn ObjectReporter>,
    ) -> Self {
        Self {
            executor,
            actors,
            arena,
            reporter,
            inference: None,
            retrieval: None,
        }
    }

    /// Also host `retrieval` actors ([`crate::retrieval_actor`]).
    pub fn with_retrieval(mut self, retrieval: Arc<RetrievalActors>) -> Self {
        self.retrieval = Some(retrieval);
        self
    }

    /// The retrieval host if actor `id` lives there.
    fn retrieval_actor(&self, id: &xnai_proto::ids::ActorId) -> Option<&Arc<RetrievalActors>> {
        self.retrieval.as_ref().filter(|h| h.contains(id))
    }

    /// Also host `inference` actors ([`crate::inference_actor`]).
    pub fn with_inference(mut self, inference: Arc<InferenceActors>) -> Self {
        self.inference = Some(inference);
        self
    }

    /// The inference host if actor `id` lives there.
    fn inference_actor(&self, id: &xnai_proto::ids::ActorId) -> Option<&Arc<InferenceActors>> {
        self.inference.as_ref().filter(|h| h.contains(id))
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
            if let Some(host) = self
                .inference
                .as_ref()
                .filter(|_| class == inference_actor::CLASS)
            {
                let built = host
                    .start(id, args, &self.executor, self.arena.dir())
                    .await?;
                return Ok(Response::new(pb::StartActorReply {
                    error: built.err().unwrap_or_default(),
                }));
            }
            let (args, pins) = self.executor.resolve_args(args).await?;
            if let Some(host) = self
                .retrieval
                .as_ref()
                .filter(|_| class == retrieval_actor::CLASS)
            {
                let built = host.start(id, &args).await;
                return Ok(Response::new(pb::StartActorReply {
                    error: built.err().unwrap_or_default(),
                }));
            }
            let built = self.actors.start_actor(id, &class, args).await?;
            drop(pins);
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
        if let Some(host) = &self.inference {
            host.stop(&id);
        }
        if let Some(host) = &self.retrieval {
            host.stop(&id);
        }
        self.actors.stop_actor(id);
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
        let result = if let Some(host) = self.inference_actor(&id) {
            host.call(id, &method, args).await?
        } else if let Some(host) = self.retrieval_actor(&id) {
            host.call(id, &method, args).await?
        } else {
            self.actors.call(id, method, args).await?
        };
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
        let ids = request
            .into_inner()
            .object_ids
            .iter()
            .map(|s| convert::object_id(s))
            .collect::<Result<Vec<_>, _>>()?;
        let gone = self.arena.delete(&ids);
        for id in &ids {
            self.executor.forget_object(id);
        }
        tracing::debug!(asked = ids.len(), deleted = gone.len(), "objects deleted");
        Ok(Response::new(pb::DeleteObjectsReply {}))
    }

    type CallActorStreamStream = inference_actor::ChunkStream;

    async fn call_actor_stream(
        &self,
        request: Request<pb::CallActorRequest>,
    ) -> Result<Response<inference_actor::ChunkStream>, Status> {
        let req = request.into_inner();
        let id = convert::actor_id(&req.actor_id)?;
        let method = convert::name("method", &req.method)?;
        let args = convert::call_args(req.args)?;
        let stream = if let Some(host) = self.inference_actor(&id) {
            host.call_stream(id, &method, args).await?
        } else if let Some(host) = self.retrieval_actor(&id) {
            inference_actor::stream::single(host.call(id, &method, args).await?)
        } else {
            inference_actor::stream::single(self.actors.call(id, method, args).await?)
        };
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests;
