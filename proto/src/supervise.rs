//! Supervision of a node's long-lived tasks: every essential task (the head's Raft node, a
//! worker's head link, a gRPC server) is spawned through a [`Supervisor`], which records the
//! first one that dies (panic, error, or an end nobody asked for). The binary's `run` waits on
//! [`Supervisor::failed`] next to its server and exits non-zero with the cause, so an
//! orchestrator restarts it instead of a zombie serving frozen state.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which essential task ended, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The task's name as given to [`Supervisor::spawn`].
    pub task: &'static str,
    /// Its error, its panic message, or "ended unexpectedly".
    pub cause: String,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "essential task {:?} died: {}", self.task, self.cause)
    }
}

impl std::error::Error for TaskFailure {}

/// Watches a node's essential tasks. Cheap to clone; every clone shares the same record.
/// Thread-safe: tasks report from any runtime thread.
#[derive(Clone)]
pub struct Supervisor {
    first: Arc<watch::Sender<Option<TaskFailure>>>,
    stopping: Arc<AtomicBool>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("failure", &*self.first.borrow())
            .field("stopping", &self.stopping.load(Ordering::SeqCst))
            .finish()
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

impl Supervisor {
    /// A supervisor with no failure recorded.
    pub fn new() -> Self {
        let (first, _) = watch::channel(None);
        Self {
            first: Arc::new(first),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Spawn an essential task on the current tokio runtime. It fails the node if it panics,
    /// returns an error, or returns `Ok` before [`Supervisor::stop`] was called (and before any
    /// other failure). Aborting the
    /// returned handle (a planned cancellation) reports nothing.
    pub fn spawn<F, E>(&self, task: &'static str, fut: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let me = self.clone();
        tokio::spawn(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                // A clean end while stopping, or after another task's failure, is a
                // consequence, not a cause.
                Ok(Ok(())) if me.is_stopping() || me.failure().is_some() => {}
                Ok(Ok(())) => me.report(task, "ended unexpectedly".to_string()),
                Ok(Err(e)) => me.report(task, e.to_string()),
                Err(panic) => me.report(task, format!("panicked: {}", panic_text(&*panic))),
            }
        })
    }

    /// Record that `task` died of `cause` (the first failure wins; later ones are only logged).
    pub fn report(&self, task: &'static str, cause: String) {
        tracing::error!(task, %cause, "essential task died; this node stops");
        let failure = TaskFailure { task, cause };
        self.first.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(failure);
                true
            } else {
                false
            }
        });
    }

    /// Say that the node is shutting down on purpose: tasks that end cleanly from now on are
    /// not failures.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether [`Supervisor::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<TaskFailure> {
        self.first.borrow().clone()
    }

    /// Resolves with the first failure (at once if one is already recorded).
    pub async fn failed(&self) -> TaskFailure {
        let mut rx = self.first.subscribe();
        match rx.wait_for(|f| f.is_some()).await {
            Ok(f) => f.clone().unwrap_or_else(unreachable_failure),
            // The sender lives as long as `self`: this cannot happen.
            Err(_) => unreachable_failure(),
        }
    }
}

fn unreachable_failure() -> TaskFailure {
    TaskFailure {
        task: "supervisor",
        cause: "the failure record closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panic_is_the_recorded_cause() {
        let s = Supervisor::new();
        assert_eq!(s.failure(), None);
        s.spawn("boom", async {
            panic!("raft said no");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        });
        let f = tokio::time::timeout(Duration::from_secs(5), s.failed())
            .await
            .expect("the panic is reported");
        assert_eq!(f.task, "boom");
        assert!(f.cause.contains("raft said no"), "{f}");
    }

    #[tokio::test]
    async fn the_first_error_wins_and_a_clean_end_counts_unless_stopping() {
        let s = Supervisor::new();
        s.spawn("disk", async { Err::<(), _>("disk full") })
            .await
            .unwrap();
        s.spawn("later", async { Err::<(), _>("second") })
            .await
            .unwrap();
        assert_eq!(s.failure().unwrap().cause, "disk full");

        let s = Supervisor::new();
        s.spawn("loop", async { Ok::<(), String>(()) })
            .await
            .unwrap();
        assert_eq!(s.failure().unwrap().cause, "ended unexpectedly");

        let s = Supervisor::new();
        s.stop();
        s.spawn("loop", async { Ok::<(), String>(()) })
            .await
            .unwrap();
        assert_eq!(s.failure(), None);
    }

    #[tokio::test]
    async fn an_aborted_task_reports_nothing() {
        let s = Supervisor::new();
        let h = s.spawn("runtime", async {
            std::future::pending::<()>().await;
            Ok::<(), String>(())
        });
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert_eq!(s.failure(), None);
    }
}
