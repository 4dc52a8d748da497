//! The head->worker boundary in one place: [`WorkerPool`], every call the head makes to a
//! worker (ExecuteTask, StartActor, StopActor, DeleteObjects, the breaker probe) in domain
//! types; [`GrpcWorkerPool`], its tonic implementation with the pb <-> domain conversions it
//! needs; the per-worker circuit [`breaker`]; and (in tests) [`fake::FakePool`]. The runtime
//! depends on the trait only, and nothing here depends on the runtime or the services.

pub mod breaker;
mod convert;
#[cfg(test)]
pub mod fake;
mod grpc;

use std::time::Duration;

use futures::future::BoxFuture;
use xnai_proto::ids::{ActorId, ObjectId, TaskId, WorkerId};

pub use breaker::{Breakers, Transition, Transitions};
pub use grpc::GrpcWorkerPool;

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
    /// Thousandths of a CPU the task asked for (the worker runs no more at once than it has).
    pub milli_cpus: u64,
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
    /// Delete object copies (freed, or left behind by a worker declared dead). `meant_for` is
    /// the registration they were recorded under: a worker registered under another id now
    /// ignores the call (`None`: unfenced, the probe).
    fn delete_objects(
        &self,
        _address: &str,
        _meant_for: Option<WorkerId>,
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
