//! The history of a run, Jepsen-style: every workload operation with its invoke and completion
//! times and outcome (`ok`, `fail` = certainly did not happen / definite answer, `unknown` = may
//! or may not have happened), every fault window, and every breaker transition seen. Checkers
//! read only this, so they can be unit-tested on hand-written histories.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: it happened, with the recorded result.
    Ok,
    /// A definite failure: it did not happen.
    Fail,
    /// Indeterminate (timeout, lost connection): it may or may not have happened.
    Unknown,
}

/// What an operation was, with its inputs and (when ok) results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum OpValue {
    /// `SubmitTask` with a request id we chose; `replies` holds the object id of every
    /// acknowledged attempt (retries reuse the request id).
    Submit {
        /// The request id (deterministic from the seed).
        request_id: String,
        /// `fill` or `digest`.
        function: String,
        /// What the returned object must contain when read.
        expect: Expect,
        /// Object ids returned, one per acknowledged attempt.
        replies: Vec<String>,
    },
    /// `put` of bytes with a known SHA-256; `object` is the acknowledged id.
    Put {
        /// Size in bytes.
        size: u64,
        /// Expected content.
        expect: Expect,
        /// The acknowledged object id.
        object: Option<String>,
    },
    /// A read of an object during the run or in the final check.
    Read {
        /// The object read.
        object: String,
        /// What it must contain.
        expect: Expect,
        /// SHA-256 of what was read (or the text, for digest results).
        got: Option<String>,
        /// True in the final verification phase, after every fault is healed.
        final_check: bool,
    },
    /// A call on a counter actor (`incr` adds 1 and returns the new value; `get` returns it).
    Counter {
        /// `incr` or `get`.
        method: String,
        /// The value returned.
        value: Option<i64>,
        /// The actor's restart count, read after an anomaly (restarts lose actor state).
        restarts: Option<u32>,
    },
    /// The workload freed these objects after reading them (most are, to keep the arenas from
    /// filling up); freed objects are not read in the final check.
    Free {
        /// Hex object ids.
        objects: Vec<String>,
    },
    /// A named-actor operation: the register the linearizability checker looks at.
    Register {
        /// `create`, `lookup` or `kill`.
        op: RegisterOp,
        /// The answer, when definite.
        result: Option<RegisterResult>,
    },
}

/// What an object must contain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Expect {
    /// The bytes of `fill size seed`.
    Fill {
        /// Bytes.
        size: u64,
        /// Seed.
        seed: u64,
    },
    /// The text of `digest` over `fill size seed`: its hex SHA-256.
    DigestOfFill {
        /// Bytes of the filled object.
        size: u64,
        /// Seed of the filled object.
        seed: u64,
    },
    /// Bytes whose SHA-256 is this.
    Sha256 {
        /// Lowercase hex.
        hex: String,
    },
}

/// Operations on the named-actor register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterOp {
    /// CreateActor with the name.
    Create,
    /// GetActor by name (no waiting).
    Lookup,
    /// KillActor by name.
    Kill,
}

/// Definite answers of a register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "kebab-case")]
pub enum RegisterResult {
    /// An actor id; `dead` when lookup found only a killed actor of that name.
    Actor {
        /// Hex actor id.
        id: String,
        /// The actor is dead.
        dead: bool,
    },
    /// Create: the name is taken (ALREADY_EXISTS).
    Taken,
    /// Lookup or kill: no actor ever had the name (NOT_FOUND).
    NotFound,
}

/// One operation of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: usize,
    /// The workload client (process) that ran it.
    pub process: usize,
    /// What it is keyed on: request id, counter or register name, object id.
    pub key: String,
    /// Milliseconds since the run started, when it was invoked.
    pub invoke_ms: u64,
    /// Milliseconds since the run started, when it completed (for `unknown`, when we gave up).
    pub complete_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it was and what it returned.
    pub value: OpValue,
    /// The error, when not ok.
    pub error: Option<String>,
}

impl Op {
    /// The kind of operation, for counting and for recovery per kind: `submit-fill`, `put`,
    /// `read`, `read-final`, `counter-incr`, `register-create`, `free`, ...
    pub fn kind(&self) -> String {
        match &self.value {
            OpValue::Submit { function, .. } => format!("submit-{function}"),
            OpValue::Put { .. } => "put".into(),
            OpValue::Read {
                final_check: true, ..
            } => "read-final".into(),
            OpValue::Read { .. } => "read".into(),
            OpValue::Counter { method, .. } => format!("counter-{method}"),
            OpValue::Free { .. } => "free".into(),
            OpValue::Register { op, .. } => format!("register-{op:?}").to_lowercase(),
        }
    }
}

/// A fault window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The nemesis.
    pub nemesis: String,
    /// Which node (`head-2`, `worker-1`).
    pub target: String,
    /// When it was injected (ms since start).
    pub start_ms: u64,
    /// When it was healed (ms since start).
    pub end_ms: u64,
    /// What was done, in words.
    pub note: String,
}

/// One breaker state change seen by polling `ClusterStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerEvent {
    /// When it was seen (ms since start).
    pub at_ms: u64,
    /// The worker's address.
    pub worker: String,
    /// The state before.
    pub from: String,
    /// The state seen.
    pub to: String,
}

/// A worker registration seen by polling `ClusterStatus`: which harness node a worker id is
/// (a restarted or returning process registers under a new id at the same address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSeen {
    /// When it was first seen (ms since start).
    pub at_ms: u64,
    /// The head's id for it.
    pub worker_id: String,
    /// The address it advertises.
    pub address: String,
    /// The harness's name for the node at that address (`worker-2`), if known.
    pub node: Option<String>,
}

/// Everything recorded in a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// Workload operations, in completion order.
    pub ops: Vec<Op>,
    /// Fault windows.
    pub faults: Vec<Fault>,
    /// Breaker transitions.
    pub breakers: Vec<BreakerEvent>,
    /// Worker ids as first seen, with the node each one is.
    #[serde(default)]
    pub workers: Vec<WorkerSeen>,
}

impl History {
    /// The harness node (`worker-2`) a worker id belongs to, if it was seen.
    pub fn node_of(&self, worker_id: &str) -> Option<&str> {
        self.workers
            .iter()
            .find(|w| w.worker_id == worker_id)
            .and_then(|w| w.node.as_deref())
    }
}

/// A thread-safe recorder shared by the workload clients, the nemesis and the poller.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    inner: Arc<Mutex<History>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(History::default())),
        }
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a completed operation (its index is assigned here).
    pub fn op(&self, mut op: Op) {
        let mut h = self.lock();
        op.index = h.ops.len();
        h.ops.push(op);
    }

    /// Record a fault window.
    pub fn fault(&self, f: Fault) {
        self.lock().faults.push(f);
    }

    /// Record a breaker transition.
    pub fn breaker(&self, e: BreakerEvent) {
        self.lock().breakers.push(e);
    }

    /// Record a worker id seen for the first time.
    pub fn worker(&self, w: WorkerSeen) {
        self.lock().workers.push(w);
    }

    /// A copy of everything so far.
    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}
