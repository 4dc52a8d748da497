//! The SDK's own value types: handles, options and the views of objects, actors and the
//! cluster. They hide the prost types (only `convert` sees those) and serialize to the JSON the
//! CLI prints with `--json` (ids as hex strings, field names as in the .proto files).

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Serialize, Serializer};
use xnai_proto::ids::{ActorId, IdParseError, ObjectId, TaskId};

/// Serializes an id (or anything printable) as its text form.
pub(crate) fn as_text<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Serializes an optional id as its text form or null.
pub(crate) fn opt_text<T: fmt::Display, S: Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// A reference to an immutable object in the cluster: a task's return value or a `put` object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct ObjectRef(#[serde(serialize_with = "as_text")] ObjectId);

impl ObjectRef {
    /// Wraps an object id.
    pub fn new(id: ObjectId) -> Self {
        Self(id)
    }
    /// Parses a 32-hex-character object id.
    pub fn parse(s: &str) -> Result<Self, IdParseError> {
        ObjectId::parse(s).map(Self)
    }
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.0
    }
    /// The task that produces this object, or `None` for a `put` object.
    pub fn producing_task(&self) -> Option<TaskId> {
        self.0.producing_task()
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One argument of a task or actor constructor.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// Inline bytes (all inline arguments of one call together at most 1 MiB).
    Value(Bytes),
    /// An object: the task runs once it exists and receives its bytes.
    Ref(ObjectRef),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Value(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<ObjectRef> for Arg {
    fn from(r: ObjectRef) -> Self {
        Arg::Ref(r)
    }
}

/// Resources a worker offers or a task or actor asks for.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Resources {
    /// CPUs (fractions allowed).
    pub cpus: f64,
    /// Bytes of RAM.
    pub memory_bytes: u64,
    /// Labels a worker must carry with the same values.
    pub labels: BTreeMap<String, String>,
}

/// Options of [`crate::Client::submit`].
#[derive(Clone, Debug, Default)]
pub struct TaskOptions {
    /// Re-runs after a system failure; `None` means the head's default (3).
    pub max_retries: Option<u32>,
    /// Also retry when the function itself returns an error.
    pub retry_exceptions: bool,
    /// Resources the task needs; `None` means 1 CPU.
    pub resources: Option<Resources>,
}

/// Options of [`crate::Client::create_actor`].
#[derive(Clone, Debug, Default)]
pub struct ActorOptions {
    /// Unique name among live actors; `None` means anonymous.
    pub name: Option<String>,
    /// Restarts after its worker dies; -1 is unlimited, default 0.
    pub max_restarts: i32,
    /// Transparent retries of a call that failed because the worker died; default 0.
    pub max_task_retries: i32,
    /// Resources; `None` means 0 CPUs.
    pub resources: Option<Resources>,
    /// Calls handled at once; 0 or 1 means one at a time, in order.
    pub max_concurrency: u32,
    /// Outlives the session that created it.
    pub detached: bool,
}

/// Lifecycle of an object in the head's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectState {
    /// The producing task has not finished yet.
    Pending,
    /// At least one copy exists.
    Ready,
    /// The producing task failed for good.
    Failed,
    /// Every copy is gone and it cannot be rebuilt.
    Lost,
    /// Freed: no longer referenced.
    Freed,
    /// A state this SDK does not know (a newer head).
    Unknown,
}

/// Where a copy of an object lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectLocation {
    /// The worker holding the copy.
    pub worker_id: String,
    /// host:port of that worker.
    pub address: String,
}

/// Everything the head knows about one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectInfo {
    /// The object's id.
    #[serde(serialize_with = "as_text")]
    pub object_id: ObjectId,
    /// Its state.
    pub state: ObjectState,
    /// Size in bytes (0 while pending).
    pub size: u64,
    /// CRC-32 (IEEE) of the whole object.
    pub crc32: u32,
    /// Workers holding a copy.
    pub locations: Vec<ObjectLocation>,
    /// The task that produced it; `None` for a `put` object.
    #[serde(serialize_with = "opt_text")]
    pub producing_task_id: Option<TaskId>,
    /// Why it failed or was lost (empty otherwise).
    pub error: String,
}

/// Lifecycle of an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorState {
    /// Waiting for a worker with the resources it needs.
    Pending,
    /// Placed, being constructed.
    Starting,
    /// Serving calls.
    Alive,
    /// Being restarted after its worker died.
    Restarting,
    /// Killed or failed for good.
    Dead,
    /// A state this SDK does not know (a newer head).
    Unknown,
}

/// What the head knows about one actor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActorInfo {
    /// The actor's id (stable across restarts).
    #[serde(serialize_with = "as_text")]
    pub actor_id: ActorId,
    /// Its name (empty when anonymous).
    pub name: String,
    /// Its class.
    pub class: String,
    /// Its state.
    pub state: ActorState,
    /// The worker hosting it (empty while pending).
    pub worker_id: String,
    /// host:port of that worker.
    pub address: String,
    /// Restarts used so far.
    pub restarts: u32,
    /// Why it died (empty otherwise).
    pub error: String,
}

/// Result of [`crate::Client::wait`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitResult {
    /// Objects no longer pending (ready, failed or lost), in request order.
    pub done: Vec<ObjectRef>,
    /// Objects still pending, in request order.
    pub pending: Vec<ObjectRef>,
}

/// One head replica as `xnai status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadStatus {
    /// Raft node id.
    pub id: u64,
    /// host:port.
    pub address: String,
    /// "leader", "follower", "candidate" or "single".
    pub role: String,
    /// Raft term.
    pub term: u64,
    /// Applied log index.
    pub commit_index: u64,
    /// OS process id.
    pub pid: u32,
}

/// One worker as `xnai status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerStatus {
    /// The worker's id.
    pub worker_id: String,
    /// host:port.
    pub address: String,
    /// OS process id.
    pub pid: u32,
    /// "alive", "degraded" or "dead".
    pub state: String,
    /// What it offers.
    pub total: Resources,
    /// What is not in use.
    pub available: Resources,
    /// Arena bytes in use.
    pub arena_used: u64,
    /// Arena capacity in bytes.
    pub arena_capacity: u64,
    /// "ok", "warning" or "critical".
    pub pressure: String,
    /// Head-to-worker breaker: "closed", "open" or "half-open".
    pub breaker: String,
    /// Tasks running now.
    pub running_tasks: u32,
    /// Its spill directory (zeros from a head or worker that does not report one).
    pub spill: SpillStatus,
}

/// A worker's spill directory: bound and use now, totals since the worker started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpillStatus {
    /// Bound in bytes (0: spilling off).
    pub capacity: u64,
    /// Bytes in spill files now.
    pub used: u64,
    /// Objects only on disk now.
    pub objects: u64,
    /// Objects moved to disk so far.
    pub spills: u64,
    /// Bytes moved to disk so far.
    pub spilled_bytes: u64,
    /// Objects read back so far.
    pub restores: u64,
    /// Bytes read back so far.
    pub restored_bytes: u64,
}

/// The cluster as the head sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterStatus {
    /// Head replicas.
    pub heads: Vec<HeadStatus>,
    /// Workers.
    pub workers: Vec<WorkerStatus>,
    /// Number of actors.
    pub actors: u64,
    /// Number of tasks.
    pub tasks: u64,
    /// Number of objects.
    pub objects: u64,
    /// Tasks not yet finished.
    pub pending_tasks: u64,
    /// Size of the head's replicated control state (zeros from an older head).
    pub state: StateSize,
}

/// Entries by kind and bytes of the head's control state (`xnai status --json` -> `state`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateSize {
    /// Worker records (alive and dead) and how many of them are dead.
    pub workers: u64,
    /// Dead worker records kept.
    pub dead_workers: u64,
    /// Task records: unfinished, or the lineage of a live object.
    pub tasks: u64,
    /// Object directory entries.
    pub objects: u64,
    /// Actor records (live and dead).
    pub actors: u64,
    /// Dead actor records kept.
    pub dead_actors: u64,
    /// Open sessions.
    pub sessions: u64,
    /// Finished-task summaries kept for listing.
    pub history: u64,
    /// Freed objects remembered.
    pub tombstones: u64,
    /// Request ids remembered for dedup.
    pub requests: u64,
    /// Inline argument bytes held by task and actor records.
    pub inline_arg_bytes: u64,
    /// The cluster's inline argument budget.
    pub inline_arg_budget: u64,
    /// Bytes of the state as a snapshot encodes it.
    pub approx_bytes: u64,
}

impl StateSize {
    /// Records of live things and lineage (workers, tasks, objects, actors, sessions), without
    /// the bounded rings (history, tombstones, request ids).
    pub fn entries(&self) -> u64 {
        self.workers + self.tasks + self.objects + self.actors + self.sessions
    }
}
