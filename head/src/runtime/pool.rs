//! The boundary between the head and its workers: [`WorkerPool`] (what the runtime needs from
//! workers, in domain types) and [`GrpcWorkerPool`], the real one over tonic with one cached
//! channel per worker address, the cluster token and the message limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Traffic};
use xnai_proto::pb::worker_client::WorkerClient;

use crate::service::convert;

/// An argument as sent to a worker: inline bytes, or an object and where its copies are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchArg {
    /// Bytes passed as they are.
    Inline(Vec<u8>),
    /// An object the worker reads or pulls.
    Object {
        /// The object.
        object_id: ObjectId,
        /// Its size.
        size: u64,
        /// Its CRC-32.
        crc32: u32,
        /// Workers holding a copy, with their addresses.
        locations: Vec<(WorkerId, String)>,
    },
}

/// One task attempt to run on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequest {
    /// The task.
    pub task_id: TaskId,
    /// Where to store its output.
    pub object_id: ObjectId,
    /// Function name.
    pub function: String,
    /// Arguments.
    pub args: Vec<DispatchArg>,
}

/// What a worker said about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskReply {
    /// Output stored in its arena.
    Stored {
        /// Size in bytes.
        size: u64,
        /// CRC-32.
        crc32: u32,
    },
    /// The function returned this application error.
    Failed(String),
    /// No holder of an argument object could be reached (the worker itself is fine).
    ArgumentUnavailable(String),
}

/// One actor to construct on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRequest {
    /// The actor.
    pub actor_id: ActorId,
    /// Class name.
    pub class: String,
    /// Constructor arguments.
    pub args: Vec<DispatchArg>,
    /// Calls handled at once.
    pub max_concurrency: u32,
}

/// A call to a worker failed at the system level (unreachable, died, refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallFailed(pub String);

/// What the runtime needs from workers. Implementations are shared across tasks.
pub trait WorkerPool: Send + Sync + 'static {
    /// Run a task attempt (awaited until it is done; idempotent per task id on the worker).
    fn execute_task(
        &self,
        address: &str,
        req: TaskRequest,
    ) -> BoxFuture<'static, Result<TaskReply, CallFailed>>;
    /// Construct an actor; `Ok(Some(error))` is a constructor (application) error.
    fn start_actor(
        &self,
        address: &str,
        req: ActorRequest,
    ) -> BoxFuture<'static, Result<Option<String>, CallFailed>>;
    /// Stop an actor.
    fn stop_actor(
        &self,
        address: &str,
        actor_id: ActorId,
    ) -> BoxFuture<'static, Result<(), CallFailed>>;
    /// Delete object copies (freed, or left behind by a worker declared dead).
    fn delete_objects(
        &self,
        _address: &str,
        _object_ids: Vec<ObjectId>,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        Box::pin(async { Ok(()) })
    }
    /// A cheap call that proves the worker answers (the breaker's probe), within `deadline`.
    fn ping(
        &self,
        _address: &str,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        Box::pin(async { Ok(()) })
    }
}

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
        object_ids: Vec<ObjectId>,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        let client = self.client(address);
        let address = address.to_string();
        Box::pin(async move {
            let req = xnai_proto::pb::DeleteObjectsRequest {
                object_ids: object_ids.iter().map(|id| id.hex()).collect(),
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
        let call = self.delete_objects(address, Vec::new());
        let address = address.to_string();
        Box::pin(async move {
            tokio::time::timeout(deadline, call).await.map_err(|_| {
                CallFailed(format!("worker {address}: no answer within {deadline:?}"))
            })?
        })
    }
}
