//! [`ClassHost`] for the actix host ([`ActorHost`]): the classes of the worker's
//! [`crate::actors::ClassRegistry`], constructed from resolved argument bytes (objects pinned
//! only while the constructor runs). It is the registry's fallback, so unknown classes and
//! actors get its errors (`UnknownClass`, `ActorNotFound`).

use bytes::Bytes;
use futures::future::BoxFuture;
use xnai_proto::ids::ActorId;

use super::{ClassHost, StartContext};
use crate::actors::{ActorHost, MethodResult};
use crate::error::Result;
use crate::executor::TaskArgSpec;

impl ClassHost for ActorHost {
    fn serves(&self, class: &str) -> bool {
        self.offers(class)
    }

    fn owns(&self, id: &ActorId) -> bool {
        self.contains(id)
    }

    fn start<'a>(
        &'a self,
        id: ActorId,
        class: &'a str,
        args: Vec<TaskArgSpec>,
        ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<std::result::Result<(), String>>> {
        Box::pin(async move {
            let (args, pins) = ctx.executor.resolve_args(args).await?;
            let built = self.start_actor(id, class, args).await?;
            drop(pins);
            Ok(built)
        })
    }

    fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> BoxFuture<'_, Result<MethodResult>> {
        Box::pin(ActorHost::call(self, id, method, args))
    }

    fn stop(&self, id: &ActorId) -> bool {
        self.stop_actor(*id)
    }
}
