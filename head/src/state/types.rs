//! Domain types of the control state: resources, arguments, specs and lifecycle states.
//! Everything here is serde-encodable so commands and snapshots can be logged with bincode,
//! and uses ordered maps and integers only, so applying commands stays deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use xnai_proto::ids::{ActorId, ObjectId, SessionId, TaskId, WorkerId};

/// Resources a worker offers or a task/actor asks for. CPUs are counted in thousandths so that
/// adding and subtracting them is exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Thousandths of a CPU.
    pub milli_cpus: u64,
    /// Bytes of RAM.
    pub memory_bytes: u64,
    /// Labels offered (worker) or required (request): every required key must match.
    pub labels: BTreeMap<String, String>,
}

impl Resources {
    /// `n` whole CPUs, no memory, no labels.
    pub fn cpus(n: u64) -> Self {
        Self {
            milli_cpus: n * 1000,
            ..Self::default()
        }
    }

    /// Whether these free amounts can hold `need` (CPUs and memory only).
    pub fn can_hold(&self, need: &Resources) -> bool {
        self.milli_cpus >= need.milli_cpus && self.memory_bytes >= need.memory_bytes
    }

    /// Whether these labels contain every label `need` asks for, with the same value.
    pub fn has_labels(&self, need: &Resources) -> bool {
        need.labels
            .iter()
            .all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// Take `need` out of these free amounts (saturating; callers check `can_hold` first).
    pub fn take(&mut self, need: &Resources) {
        self.milli_cpus = self.milli_cpus.saturating_sub(need.milli_cpus);
        self.memory_bytes = self.memory_bytes.saturating_sub(need.memory_bytes);
    }

    /// Give `need` back, never above `total`.
    pub fn give_back(&mut self, need: &Resources, total: &Resources) {
        self.milli_cpus = (self.milli_cpus + need.milli_cpus).min(total.milli_cpus);
        self.memory_bytes = (self.memory_bytes + need.memory_bytes).min(total.memory_bytes);
    }
}

/// One argument of a task or actor constructor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arg {
    /// Bytes passed to the function as they are.
    Inline(Vec<u8>),
    /// An object whose bytes are passed; the task waits until it is ready.
    Ref(ObjectId),
}

/// Options of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Re-runs allowed after failures that may be retried.
    pub max_retries: u32,
    /// Also retry application errors (the function said no).
    pub retry_exceptions: bool,
    /// What the task needs on its worker.
    pub resources: Resources,
    /// The client session that holds the output (freed when the session lets it go); `None`
    /// keeps it until it is freed explicitly (CLI submissions).
    pub session: Option<SessionId>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            retry_exceptions: false,
            resources: Resources::cpus(1),
            session: None,
        }
    }
}

/// What to run: a function from the workers' registry and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Name in the workers' function registry.
    pub function: String,
    /// Arguments in order.
    pub args: Vec<Arg>,
    /// Retries and resources.
    pub options: TaskOptions,
}

/// Options of an actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorOptions {
    /// Unique name among live actors, if any.
    pub name: Option<String>,
    /// Restarts after a system failure; -1 is unlimited.
    pub max_restarts: i32,
    /// Transparent call retries (kept for the SDK; calls bypass the head).
    pub max_task_retries: i32,
    /// What the actor needs on its worker (0 CPUs by default).
    pub resources: Resources,
    /// Calls handled at once.
    pub max_concurrency: u32,
    /// Outlives the session that created it.
    pub detached: bool,
}

/// What to construct: a class from the workers' registry and its constructor arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorSpec {
    /// Name in the workers' actor class registry.
    pub class: String,
    /// Constructor arguments.
    pub args: Vec<Arg>,
    /// Name, restarts, resources.
    pub options: ActorOptions,
}

/// Lifecycle of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for its argument objects or a worker.
    Pending,
    /// Dispatched to `TaskRecord::worker`.
    Running,
    /// Its output object is ready.
    Finished,
    /// Failed for good; `TaskRecord::error` says why.
    Failed,
}

/// Lifecycle of an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorState {
    /// Waiting for a worker.
    Pending,
    /// Placed, being constructed.
    Starting,
    /// Serving calls.
    Alive,
    /// Waiting for a new worker after a system failure.
    Restarting,
    /// Killed or failed for good.
    Dead,
}

/// Lifecycle of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectState {
    /// Its producing task has not finished.
    Pending,
    /// At least one copy exists.
    Ready,
    /// Its producing task failed for good.
    Failed,
    /// Every copy is gone.
    Lost,
    /// Freed (no longer referenced).
    Freed,
}

/// Why an attempt failed: the worker/system, or the function itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The worker could not be reached or died: retried while `max_retries` remains.
    System,
    /// The function returned an error: retried only with `retry_exceptions`.
    Application,
    /// The worker could not fetch an argument object from any of its holders (one may be
    /// dying, not yet declared dead): retried after a backoff without spending `max_retries`,
    /// at most [`MAX_ARGUMENT_MISSES`] times; after that it counts as a system error.
    ArgumentUnavailable,
}

/// Argument fetch failures a task may have that do not count against `max_retries`; enough
/// for a dead holder to be declared dead (about 2 s) under the runtime's backoff.
pub const MAX_ARGUMENT_MISSES: u32 = 10;

/// How a worker came to hold a copy of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyKind {
    /// A new object put by a client (its primary copy).
    Put,
    /// A secondary copy pulled for a task.
    Pulled,
}

/// One run of a task on a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Where it ran.
    pub worker: WorkerId,
    /// Why it failed (`None` while running or when it succeeded).
    pub cause: Option<String>,
    /// Whether it counts against `max_retries` (not when an argument was unavailable).
    pub charged: bool,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// host:port of its gRPC server.
    pub address: String,
    /// Its process id.
    pub pid: u32,
    /// What it offers in total.
    pub total: Resources,
    /// What is not taken by running tasks and placed actors.
    pub available: Resources,
    /// Hard capacity of its arena in bytes.
    pub arena_capacity: u64,
    /// Task functions it can run.
    pub functions: BTreeSet<String>,
    /// Actor classes it can host.
    pub classes: BTreeSet<String>,
    /// Alive, or dead for good (a dead worker must register again under a new id).
    pub state: WorkerState,
    /// The leader's circuit breaker for calls to it, replicated so a new leader keeps it.
    pub breaker: BreakerState,
    /// When declared dead: objects its process may still hold, deleted if it comes back.
    pub left_objects: BTreeSet<ObjectId>,
    /// When declared dead: actors its process may still host, stopped if it comes back.
    pub left_actors: BTreeSet<ActorId>,
}

/// State of the head-to-worker circuit breaker, as logged by `SetBreaker`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BreakerState {
    /// Calls flow; placements allowed.
    #[default]
    Closed,
    /// Too many failures: no calls but probes, no placements.
    Open,
    /// A probe is allowed through; one success closes it.
    HalfOpen,
}

impl BreakerState {
    /// Lowercase name for status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// An open client session: its objects live while it keeps its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The lease the client promised to renew within, in milliseconds.
    pub lease_ms: u64,
}

/// Logged lifecycle of a worker. Silence (missed heartbeats) is soft state, not this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerState {
    /// Registered; may get placements while it heartbeats.
    Alive,
    /// Declared dead (replaced by a new registration at its address, or by failure detection).
    Dead,
}

/// A submitted task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Submission order, the key of the pending queue.
    pub seq: u64,
    /// What to run.
    pub spec: TaskSpec,
    /// Where it is in its lifecycle.
    pub state: TaskState,
    /// Every run so far, the last one current.
    pub attempts: Vec<Attempt>,
    /// The worker it runs on while running.
    pub worker: Option<WorkerId>,
    /// Why it failed, when failed.
    pub error: Option<String>,
}

impl TaskRecord {
    /// Attempts that count against `max_retries`.
    pub fn charged_attempts(&self) -> u32 {
        self.attempts.iter().filter(|a| a.charged).count() as u32
    }

    /// Attempts that could not fetch an argument and were not charged.
    pub fn argument_misses(&self) -> u32 {
        self.attempts.len() as u32 - self.charged_attempts()
    }
}

/// A created actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Creation order, the key of the pending queue.
    pub seq: u64,
    /// What to construct.
    pub spec: ActorSpec,
    /// Where it is in its lifecycle.
    pub state: ActorState,
    /// Where it is placed (starting or alive).
    pub worker: Option<WorkerId>,
    /// Restarts used.
    pub restarts: u32,
    /// Why it is dead, when dead.
    pub error: Option<String>,
}

/// An entry of the object directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Where it is in its lifecycle.
    pub state: ObjectState,
    /// Size in bytes (0 until ready).
    pub size: u64,
    /// CRC-32 (IEEE) of the bytes.
    pub crc32: u32,
    /// Workers holding a copy.
    pub locations: BTreeSet<WorkerId>,
    /// The task that makes it; `None` for put objects.
    pub producing_task: Option<TaskId>,
    /// Why it failed or was lost.
    pub error: Option<String>,
    /// The session holding it (`None`: held until freed explicitly).
    pub owner: Option<SessionId>,
    /// Its holder let go: freed as soon as no live work or lineage needs it.
    pub released: bool,
}
