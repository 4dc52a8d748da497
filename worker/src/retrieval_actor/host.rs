//! [`ClassHost`] for the `retrieval` actors: constructed from resolved argument words (any
//! argument object is pinned only while the index loads); calls to one actor run one at a
//! time; `CallActorStream` answers with the whole result as one chunk.

use bytes::Bytes;
use futures::future::BoxFuture;
use xnai_proto::ids::ActorId;

use super::{CLASS, RetrievalActors};
use crate::actors::MethodResult;
use crate::error::Result;
use crate::executor::TaskArgSpec;
use crate::hosts::{ClassHost, StartContext};

impl ClassHost for RetrievalActors {
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
        Box::pin(async move {
            let (words, _pins) = ctx.executor.resolve_args(args).await?;
            Ok(RetrievalActors::start(self, id, &words).await)
        })
    }

    fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<MethodResult>> {
        Box::pin(async move { RetrievalActors::call(self, id, &method, args).await })
    }

    fn stop(&self, id: &ActorId) -> bool {
        RetrievalActors::stop(self, id)
    }
}
