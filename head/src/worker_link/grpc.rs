//! The head's side of the head->worker boundary: [`GrpcWorkerPool`], the real
//! [`WorkerPool`](super::WorkerPool) over tonic with one cached channel per worker address, the
//! cluster token and the message limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::ids::{ActorId, ObjectId, WorkerId};
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Traffic};
use xnai_proto::pb::worker_client::WorkerClient;

use super::convert;
use super::{ActorRequest, CallFailed, TaskReply, TaskRequest, WorkerPool};

type Client = WorkerClient<InterceptedService<Channel, TokenInject>>;

/// [`WorkerPool`] over gRPC. Channels are created lazily, one per address, and reconnect by
/// themselves; thread-safe.
pub struct GrpcWorkerPool {
    channels: Mutex<HashMap<String, Channel>>,
    token: TokenInject,
}

impl GrpcWorkerPool {
    /// A pool that sends `token` on every call.
    pub fn new(token: TokenInject) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            token,
        }
    }

    fn client(&self, address: &str) -> Result<Client, CallFailed> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(address) {
            Some(c) => c.clone(),
            None => {
                let c = net::lazy_channel(address, Traffic::Actors)
                    .map_err(|e| CallFailed(format!("worker: {e}")))?;
                channels.insert(address.to_string(), c.clone());
                c
            }
        };
        Ok(WorkerClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }
}

fn failed(address: &str, s: tonic::Status) -> CallFailed {
    CallFailed(format!("worker {address}: {:?}: {}", s.code(), s.message()))
}

impl WorkerPool for GrpcWorkerPool {
    fn execute_task(
        &self,
        address: &str,
        req: TaskRequest,
    ) -> BoxFuture<'static, Result<TaskReply, CallFailed>> {
        let client = self.client(address);
        let address = address.to_string();
        Box::pin(async move {
            let reply = client?.execute_task(convert::task_request_to_pb(req)).await;
            let reply = reply.map_err(|s| failed(&address, s))?.into_inner();
            convert::task_reply_from_pb(reply)
                .map_err(|e| CallFailed(format!("worker {address}: {e}")))
        })
    }

    fn start_actor(
        &self,
        address: &str,
        req: ActorRequest,
    ) -> BoxFuture<'static, Result<Option<String>, CallFailed>> {
        let client = self.client(address);
        let address = address.to_string();
        Box::pin(async move {
            let reply = client?.start_actor(convert::actor_request_to_pb(req)).await;
            let error = reply.map_err(|s| failed(&address, s))?.into_inner().error;
            Ok(if error.is_empty() { None } else { Some(error) })
        })
    }

    fn stop_actor(
        &self,
        address: &str,
        actor_id: ActorId,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        let client = self.client(address);
        let address = address.to_string();
        Box::pin(async move {
            let req = xnai_proto::pb::StopActorRequest {
                actor_id: actor_id.hex(),
            };
            client?
                .stop_actor(req)
                .await
                .map_err(|s| failed(&address, s))?;
            Ok(())
        })
    }

    fn delete_objects(
        &self,
        address: &str,
        meant_for: Option<WorkerId>,
        object_ids: Vec<ObjectId>,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        let client = self.client(address);
        let address = address.to_string();
        Box::pin(async move {
            let req = xnai_proto::pb::DeleteObjectsRequest {
                object_ids: object_ids.iter().map(|id| id.hex()).collect(),
                worker_id: meant_for.map(|id| id.hex()).unwrap_or_default(),
            };
            client?
                .delete_objects(req)
                .await
                .map_err(|s| failed(&address, s))?;
            Ok(())
        })
    }

    fn ping(
        &self,
        address: &str,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        // An empty DeleteObjects: authenticated, no work, answered by the worker's own server.
        let call = self.delete_objects(address, None, Vec::new());
        let address = address.to_string();
        Box::pin(async move {
            tokio::time::timeout(deadline, call).await.map_err(|_| {
                CallFailed(format!("worker {address}: no answer within {deadline:?}"))
            })?
        })
    }
}
