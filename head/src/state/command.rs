//! The commands that change the control state, what applying one returns, and the side effects
//! it asks the runtime to carry out. Commands carry every id and value they need, so applying
//! them needs no clock and no randomness and replays the same on every node.

use serde::{Deserialize, Serialize};
use xnai_proto::ids::{ActorId, ObjectId, SessionId, TaskId, WorkerId};

use super::types::{ActorSpec, BreakerState, CopyKind, FailureKind, Resources, TaskSpec};

/// A change to the control state, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A worker process joins with a fresh id.
    RegisterWorker {
        /// Dedup key chosen by the worker.
        request_id: String,
        /// Id chosen by the head for this registration.
        worker_id: WorkerId,
        /// host:port of its gRPC server.
        address: String,
        /// Its process id.
        pid: u32,
        /// What it offers.
        resources: Resources,
        /// Arena capacity in bytes.
        arena_capacity: u64,
        /// Task functions it runs.
        functions: Vec<String>,
        /// Actor classes it hosts.
        classes: Vec<String>,
    },
    /// A worker is gone for good: its running tasks fail (and retry), its actors die (and
    /// restart), its object copies are dropped.
    DeclareWorkerDead {
        /// The worker.
        worker_id: WorkerId,
        /// Why, recorded in task and object errors.
        reason: String,
    },
    /// A client submits a task.
    SubmitTask {
        /// Client-chosen dedup key.
        request_id: String,
        /// Id chosen by the head.
        task_id: TaskId,
        /// What to run.
        spec: TaskSpec,
    },
    /// The scheduler places a pending task on a worker.
    AssignTask {
        /// The task.
        task_id: TaskId,
        /// Where it runs.
        worker_id: WorkerId,
    },
    /// A worker stored the output of an attempt.
    TaskFinished {
        /// The task.
        task_id: TaskId,
        /// Where it ran.
        worker_id: WorkerId,
        /// Which attempt (1-based); a stale attempt is ignored.
        attempt: u32,
        /// Output size in bytes.
        size: u64,
        /// Output CRC-32.
        crc32: u32,
    },
    /// An attempt failed; `apply` decides whether to retry.
    TaskFailed {
        /// The task.
        task_id: TaskId,
        /// Where it ran.
        worker_id: WorkerId,
        /// Which attempt (1-based); a stale attempt is ignored.
        attempt: u32,
        /// System or application failure.
        kind: FailureKind,
        /// What went wrong.
        error: String,
    },
    /// A client creates an actor.
    CreateActor {
        /// Client-chosen dedup key.
        request_id: String,
        /// Id chosen by the head.
        actor_id: ActorId,
        /// What to construct.
        spec: ActorSpec,
    },
    /// The scheduler places a pending actor on a worker.
    PlaceActor {
        /// The actor.
        actor_id: ActorId,
        /// Where it starts.
        worker_id: WorkerId,
    },
    /// The worker constructed the actor.
    ActorAlive {
        /// The actor.
        actor_id: ActorId,
        /// Where it runs.
        worker_id: WorkerId,
    },
    /// The actor failed to start or died on its worker; restarted on system failures while
    /// `max_restarts` allows.
    ActorDead {
        /// The actor.
        actor_id: ActorId,
        /// Where it was.
        worker_id: WorkerId,
        /// System (worker trouble) or application (constructor error).
        kind: FailureKind,
        /// What went wrong.
        error: String,
    },
    /// A client kills an actor; its name becomes free.
    KillActor {
        /// Client-chosen dedup key.
        request_id: String,
        /// The actor.
        actor_id: ActorId,
    },
    /// A worker now holds a copy of an object (a put or a pulled copy).
    AddObjectCopy {
        /// The object.
        object_id: ObjectId,
        /// Who holds it.
        worker_id: WorkerId,
        /// Size in bytes.
        size: u64,
        /// CRC-32 of the bytes.
        crc32: u32,
        /// Put or pulled.
        kind: CopyKind,
    },
    /// A worker dropped copies (evicted or deleted).
    RemoveObjectCopies {
        /// Who dropped them.
        worker_id: WorkerId,
        /// Which objects.
        object_ids: Vec<ObjectId>,
        /// Why, for the error of objects that end up with no copy.
        reason: String,
    },
    /// The leader's circuit breaker for a worker changed state.
    SetBreaker {
        /// The worker.
        worker_id: WorkerId,
        /// Its new state.
        state: BreakerState,
    },
    /// A client opens a session with a lease.
    OpenSession {
        /// Client-chosen dedup key.
        request_id: String,
        /// Id chosen by the head.
        session_id: SessionId,
        /// Lease length in milliseconds.
        lease_ms: u64,
    },
    /// A session ends (closed by its client, or its lease expired): its objects are released.
    CloseSession {
        /// The session.
        session_id: SessionId,
        /// Why, for the logs.
        reason: String,
    },
    /// A holder lets go of objects; each is freed once no live work or lineage needs it.
    ReleaseObjects {
        /// The session letting go; `None` frees explicitly (the objects' holder is not checked).
        session_id: Option<SessionId>,
        /// The objects.
        object_ids: Vec<ObjectId>,
    },
}

/// What applying a command returned. Successful outcomes of commands with a request id are
/// remembered, so a retried write returns the first outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The worker's id.
    WorkerRegistered {
        /// Assigned id.
        worker_id: WorkerId,
    },
    /// The task's id and its return object.
    TaskSubmitted {
        /// The task.
        task_id: TaskId,
        /// Its return object.
        object_id: ObjectId,
    },
    /// The actor's id.
    ActorCreated {
        /// The actor.
        actor_id: ActorId,
    },
    /// The session's id.
    SessionOpened {
        /// The session.
        session_id: SessionId,
    },
    /// The killed actor's id.
    ActorKilled {
        /// The actor.
        actor_id: ActorId,
    },
    /// The command changed the state.
    Applied,
    /// The command no longer applies (stale attempt, already placed...); nothing changed.
    Ignored(String),
    /// The command was refused; nothing changed.
    Rejected(ApplyError),
}

impl Outcome {
    /// Whether the command changed nothing.
    pub fn is_noop(&self) -> bool {
        matches!(self, Outcome::Ignored(_) | Outcome::Rejected(_))
    }
}

/// Why `apply` refused a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// No registered worker offers this function.
    #[error("unknown function {function:?}; workers offer: {}", offered.join(", "))]
    UnknownFunction {
        /// Asked for.
        function: String,
        /// What workers offer, sorted.
        offered: Vec<String>,
    },
    /// No registered worker offers this actor class.
    #[error("unknown actor class {class:?}; workers offer: {}", offered.join(", "))]
    UnknownClass {
        /// Asked for.
        class: String,
        /// What workers offer, sorted.
        offered: Vec<String>,
    },
    /// A live actor already has this name.
    #[error("an actor named {0:?} already exists; kill it first or pick another name")]
    NameTaken(String),
    /// The object is not in the directory.
    #[error("no object {0}")]
    NoSuchObject(ObjectId),
    /// The actor does not exist.
    #[error("no actor {0}")]
    NoSuchActor(ActorId),
    /// The worker is not registered.
    #[error("worker {0} is not registered with this head; register again")]
    UnknownWorker(WorkerId),
    /// The session is not open (closed, or its lease expired).
    #[error("session {0} is not open (closed or lease expired); open a new one")]
    NoSuchSession(SessionId),
    /// The command contradicts the state (e.g. a put of an existing id).
    #[error("{0}")]
    Conflict(String),
    /// Holding these inline arguments would take the cluster over its inline-argument budget.
    #[error(
        "inline arguments over the cluster's budget: {need} more bytes on top of {used} held, \
         budget {budget} bytes; put large data as an object and pass it by reference, or \
         release results you no longer need"
    )]
    InlineBudget {
        /// Inline bytes of this command.
        need: u64,
        /// Inline bytes the kept records hold now.
        used: u64,
        /// The cluster's budget.
        budget: u64,
    },
}

/// Work the runtime must do after a command is applied (on the leader only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Call `Worker.ExecuteTask` for this attempt.
    DispatchTask {
        /// The task.
        task_id: TaskId,
        /// Where to run it.
        worker_id: WorkerId,
        /// Which attempt (1-based), echoed in the result command.
        attempt: u32,
    },
    /// Call `Worker.StartActor`.
    StartActor {
        /// The actor.
        actor_id: ActorId,
        /// Where to start it.
        worker_id: WorkerId,
    },
    /// Call `Worker.StopActor`.
    StopActor {
        /// The actor.
        actor_id: ActorId,
        /// Where it runs.
        worker_id: WorkerId,
    },
    /// Call `Worker.DeleteObjects`: these copies are freed (or left behind by a dead worker).
    DeleteObjects {
        /// Who holds them (the process the call goes to).
        worker_id: WorkerId,
        /// The registration the copies were recorded under, sent along so the worker can
        /// fence the call: `worker_id` itself for a free; the old id of a returning process
        /// for what it left behind (a fixed worker dropped those itself before registering
        /// again and ignores the call; a worker before the fence deletes them).
        meant_for: WorkerId,
        /// Which objects.
        object_ids: Vec<ObjectId>,
    },
}
