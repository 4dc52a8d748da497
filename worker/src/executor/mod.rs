//! Runs tasks (`Worker.ExecuteTask`): deduplicated per task id (concurrent calls share one
//! run; a stored output is returned again; failures are not kept, so retries re-run), admitted
//! within the worker's CPUs and 0-CPU slots ([`limits`]), arguments resolved from the
//! arena or pulled from peers ([`args`]), pinned while the function runs, output stored as a
//! pinned primary object. Application errors (the function's own, or "arena full" for its
//! output) are outcomes; everything else is a system error the head retries elsewhere.

pub mod args;
pub mod breaker;
pub mod limits;
pub mod pull;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;
use xnai_proto::ids::{ObjectId, TaskId};

pub use args::{ObjectRefSpec, TaskArgSpec};
pub use limits::{DEFAULT_MAX_ZERO_CPU_TASKS, TaskLimits};
pub use pull::{GrpcPuller, ObjectPuller};

use crate::arena::{Arena, CopyKind, StoredMeta};
use crate::error::{Result, WorkerError};
use crate::functions::FunctionRegistry;
use crate::head_link::ObjectReporter;

/// Outputs smaller than this are written inline instead of on the blocking pool.
const INLINE_STORE_BYTES: usize = 1 << 20;

/// A task as the head sends it.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The task.
    pub task_id: TaskId,
    /// Where to store its output.
    pub object_id: ObjectId,
    /// Function name in the registry.
    pub function: String,
    /// Arguments in order.
    pub args: Vec<TaskArgSpec>,
    /// CPUs the task asked for; `None` (a head that does not say) counts as a 0-CPU task.
    pub cpus: Option<f64>,
}

/// How a task ended, as far as the head is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// The output is stored in this worker's arena.
    Stored(StoredMeta),
    /// The function (or storing its output) failed with this application error text.
    Failed(String),
    /// An argument object could not be fetched from any of its locations (not kept: the head
    /// retries later, maybe with other locations).
    ArgumentUnavailable(String),
}

type SharedRun = Shared<BoxFuture<'static, Result<TaskOutcome>>>;

enum Slot {
    Running(SharedRun),
    Done(TaskOutcome, ObjectId),
}

pub(crate) struct Inner {
    pub(crate) arena: Arena,
    functions: FunctionRegistry,
    pub(crate) puller: Arc<dyn ObjectPuller>,
    pub(crate) reporter: Arc<dyn ObjectReporter>,
    tasks: Mutex<HashMap<TaskId, Slot>>,
    limits: TaskLimits,
    running: AtomicU32,
    queued: AtomicU32,
}

impl Inner {
    fn tasks(&self) -> MutexGuard<'_, HashMap<TaskId, Slot>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The task executor. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl Executor {
    /// An executor storing into `arena`, pulling with `puller`, reporting pulls to `reporter`,
    /// bounded by this host's cores and [`DEFAULT_MAX_ZERO_CPU_TASKS`].
    pub fn new(
        arena: Arena,
        functions: FunctionRegistry,
        puller: Arc<dyn ObjectPuller>,
        reporter: Arc<dyn ObjectReporter>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limits = TaskLimits::new(cores as f64, DEFAULT_MAX_ZERO_CPU_TASKS);
        Self::with_limits(arena, functions, puller, reporter, limits)
    }

    /// Like [`Executor::new`], running at most what `limits` allows at once.
    pub fn with_limits(
        arena: Arena,
        functions: FunctionRegistry,
        puller: Arc<dyn ObjectPuller>,
        reporter: Arc<dyn ObjectReporter>,
        limits: TaskLimits,
    ) -> Self {
        let inner = Inner {
            arena,
            functions,
            puller,
            reporter,
            tasks: Mutex::new(HashMap::new()),
            limits,
            running: AtomicU32::new(0),
            queued: AtomicU32::new(0),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Names of the registered functions.
    pub fn function_names(&self) -> Vec<String> {
        self.inner.functions.names()
    }

    /// Tasks running right now.
    pub fn running(&self) -> u32 {
        self.inner.running.load(Ordering::Relaxed)
    }

    /// Tasks waiting for their share of CPUs or a 0-CPU slot.
    pub fn queued(&self) -> u32 {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Run a task, or attach to the run already in progress, or return the stored result.
    /// The run continues even if every caller goes away.
    pub async fn execute(&self, spec: TaskSpec) -> Result<TaskOutcome> {
        let run = {
            let mut tasks = self.inner.tasks();
            match tasks.get(&spec.task_id) {
                Some(Slot::Running(run)) => run.clone(),
                Some(Slot::Done(outcome, object)) if self.inner.arena.contains(object) => {
                    return Ok(outcome.clone());
                }
                _ => {
                    let run = self.spawn(spec.clone());
                    tasks.insert(spec.task_id, Slot::Running(run.clone()));
                    run
                }
            }
        };
        run.await
    }

    fn spawn(&self, spec: TaskSpec) -> SharedRun {
        let inner = Arc::clone(&self.inner);
        let span = tracing::info_span!("task", task_id = %spec.task_id, function = %spec.function);
        let task_id = spec.task_id;
        let object_id = spec.object_id;
        let handle = tokio::spawn(
            async move {
                inner.queued.fetch_add(1, Ordering::Relaxed);
                let admission = inner.limits.admit(spec.cpus).await;
                inner.queued.fetch_sub(1, Ordering::Relaxed);
                inner.running.fetch_add(1, Ordering::Relaxed);
                let result = run_task(&inner, spec).await;
                inner.running.fetch_sub(1, Ordering::Relaxed);
                drop(admission);
                let mut tasks = inner.tasks();
                match &result {
                    Ok(outcome @ TaskOutcome::Stored(_)) => {
                        tracing::debug!(?outcome, "task done");
                        tasks.insert(task_id, Slot::Done(outcome.clone(), object_id));
                    }
                    // Failures are not kept: a retry (retry_exceptions) runs the task again.
                    Ok(TaskOutcome::Failed(text)) => {
                        tracing::info!(error = %text, "task failed (application error)");
                        tasks.remove(&task_id);
                    }
                    Ok(TaskOutcome::ArgumentUnavailable(text)) => {
                        tracing::info!(error = %text, "task argument unavailable");
                        tasks.remove(&task_id);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "task failed (system error)");
                        tasks.remove(&task_id);
                    }
                }
                result
            }
            .instrument(span),
        );
        async move { handle.await.unwrap_or(Err(WorkerError::ShuttingDown)) }
            .boxed()
            .shared()
    }

    /// Resolve arguments to bytes (local copies or pulls). The returned guards pin the
    /// referenced objects; keep them while the bytes are in use.
    pub async fn resolve_args(&self, args: Vec<TaskArgSpec>) -> Result<(Vec<Bytes>, args::Pins)> {
        args::resolve(&self.inner, args).await
    }

    /// Forget the stored result of the task that produced `object` (after it was deleted).
    pub fn forget_object(&self, object: &ObjectId) {
        if let Some(task) = object.producing_task() {
            let mut tasks = self.inner.tasks();
            if matches!(tasks.get(&task), Some(Slot::Done(..))) {
                tasks.remove(&task);
            }
        }
    }

    /// Delete every object in the arena and forget every stored result: the worker is about to
    /// register under a new id, and the head recorded none of these at that id (what the old
    /// id held was dropped from its directory when it was declared dead). Returns how many
    /// objects were deleted. A task still running finishes and stores its output afterwards.
    pub fn forget_all_objects(&self) -> usize {
        let arena = &self.inner.arena;
        let ids = arena.object_ids();
        let gone = arena.delete(&ids);
        self.inner
            .tasks()
            .retain(|_, slot| matches!(slot, Slot::Running(_)));
        gone.len()
    }
}

async fn run_task(inner: &Arc<Inner>, spec: TaskSpec) -> Result<TaskOutcome> {
    let function =
        inner
            .functions
            .get(&spec.function)
            .ok_or_else(|| WorkerError::UnknownFunction {
                name: spec.function.clone(),
                offered: inner.functions.names().join(", "),
            })?;
    let (args, pins) = match args::resolve(inner, spec.args).await {
        Ok(resolved) => resolved,
        Err(e @ WorkerError::ObjectUnavailable { .. }) => {
            return Ok(TaskOutcome::ArgumentUnavailable(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let output = function.call(args).await;
    drop(pins);
    let output = match output {
        Ok(b) => b,
        Err(text) => return Ok(TaskOutcome::Failed(text)),
    };
    // Inline only when it fits now: making room may spill, which copies files.
    let fits_now = {
        let u = inner.arena.usage();
        u.capacity.saturating_sub(u.used + u.reserved) >= output.len() as u64
    };
    let stored = if output.len() < INLINE_STORE_BYTES && fits_now {
        inner
            .arena
            .store(spec.object_id, &output, CopyKind::Primary)
    } else {
        let arena = inner.arena.clone();
        let id = spec.object_id;
        tokio::task::spawn_blocking(move || arena.store(id, &output, CopyKind::Primary))
            .await
            .map_err(|_| WorkerError::ShuttingDown)?
    };
    match stored {
        Ok(meta) => {
            tracing::debug!(object_id = %spec.object_id, size = meta.size, "task output stored");
            Ok(TaskOutcome::Stored(meta))
        }
        Err(e @ (WorkerError::ArenaFull { .. } | WorkerError::ArenaAndSpillFull { .. })) => {
            Ok(TaskOutcome::Failed(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
