//! How many tasks a worker runs at once. CPU tasks share the worker's CPUs, counted in
//! thousandths (a fair weighted semaphore); 0-CPU tasks, and tasks whose request did not say,
//! share a fixed number of slots (`--max-zero-cpu-tasks`). A task waits, queued in arrival
//! order, for its share before it resolves its arguments or runs.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default number of 0-CPU tasks a worker runs at once (`--max-zero-cpu-tasks`). The head sends
/// each task's CPUs (`ExecuteTaskRequest.cpus`); tasks that ask for none, and requests from
/// clients that do not say, count here.
pub const DEFAULT_MAX_ZERO_CPU_TASKS: usize = 64;

/// The worker's task concurrency bounds. Thread-safe; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TaskLimits {
    /// Thousandths of a CPU.
    cpu: Arc<Semaphore>,
    cpu_total: u32,
    zero: Arc<Semaphore>,
}

/// A running task's share; released on drop.
#[derive(Debug)]
pub struct Admission(#[allow(dead_code)] OwnedSemaphorePermit);

impl TaskLimits {
    /// Bounds for a worker offering `cpus` CPUs (at least a thousandth) and running at most
    /// `max_zero_cpu_tasks` (at least 1) 0-CPU tasks at once.
    pub fn new(cpus: f64, max_zero_cpu_tasks: usize) -> Self {
        let cpu_total = (cpus * 1000.0).round().clamp(1.0, u32::MAX as f64 / 2.0) as u32;
        let zero = max_zero_cpu_tasks.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            cpu: Arc::new(Semaphore::new(cpu_total as usize)),
            cpu_total,
            zero: Arc::new(Semaphore::new(zero)),
        }
    }

    /// Wait for a share: `cpus` CPUs (a task asking for more than the worker has gets all of
    /// them), or a 0-CPU slot when `cpus` is 0 or unknown.
    pub async fn admit(&self, cpus: Option<f64>) -> Admission {
        let thousandths = cpus
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(|c| ((c * 1000.0).ceil() as u32).clamp(1, self.cpu_total));
        let permit = match thousandths {
            Some(n) => Arc::clone(&self.cpu).acquire_many_owned(n).await,
            None => Arc::clone(&self.zero).acquire_owned().await,
        };
        // The semaphores are never closed.
        Admission(permit.expect("task semaphores are never closed"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn admitted_now(limits: &TaskLimits, cpus: Option<f64>) -> Option<Admission> {
        tokio::time::timeout(Duration::from_millis(1), limits.admit(cpus))
            .await
            .ok()
    }

    #[tokio::test]
    async fn cpu_tasks_share_the_cpus_and_zero_cpu_tasks_their_slots() {
        let limits = TaskLimits::new(2.0, 3);
        let a = admitted_now(&limits, Some(1.0)).await.unwrap();
        let _b = admitted_now(&limits, Some(0.5)).await.unwrap();
        let _c = admitted_now(&limits, Some(0.5)).await.unwrap();
        assert!(
            admitted_now(&limits, Some(0.1)).await.is_none(),
            "2 CPUs in use"
        );
        let zero: Vec<_> = [Some(0.0), None, Some(0.0)].into_iter().collect();
        let mut held = Vec::new();
        for cpus in zero {
            held.push(admitted_now(&limits, cpus).await.unwrap());
        }
        assert!(
            admitted_now(&limits, None).await.is_none(),
            "3 0-CPU slots in use"
        );
        drop(a);
        assert!(
            admitted_now(&limits, Some(8.0)).await.is_none(),
            "needs all 2"
        );
        assert!(admitted_now(&limits, Some(1.0)).await.is_some());
        held.pop();
        assert!(admitted_now(&limits, None).await.is_some());
    }
}
