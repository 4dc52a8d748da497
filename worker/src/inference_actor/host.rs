//! [`ClassHost`] for the `inference` actors: they construct from raw StartActor arguments (a
//! model object is pulled into the arena and pinned for the actor's life), their methods are
//! async, and `generate` streams on `CallActorStream`.

use bytes::Bytes;
use futures::future::BoxFuture;
use xnai_proto::ids::ActorId;

use super::{CLASS, InferenceActors};
use crate::actors::MethodResult;
use crate::error::Result;
use crate::executor::TaskArgSpec;
use crate::hosts::{ChunkStream, ClassHost, StartContext};

impl ClassHost for InferenceActors {
    fn serves(&self, class: &str) -> bool {
        class == CLASS
    }

    fn owns(&self, id: &ActorId) -> bool {
        self.contains(id)
    }

    fn start<'a>(
        &'a self,
        id: ActorId,
        _class: &'a str,
        args: Vec<TaskArgSpec>,
        ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<std::result::Result<(), String>>> {
        Box::pin(InferenceActors::start(
            self,
            id,
            args,
            &ctx.executor,
            &ctx.arena_dir,
        ))
    }

    fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<MethodResult>> {
        Box::pin(async move { InferenceActors::call(self, id, &method, args).await })
    }

    fn call_stream(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<ChunkStream>> {
        Box::pin(async move { InferenceActors::call_stream(self, id, &method, args).await })
    }

    fn stop(&self, id: &ActorId) -> bool {
        InferenceActors::stop(self, id)
    }
}
