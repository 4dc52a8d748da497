//! Admission control shared by every engine: at most `slots` calls run and at most
//! `queue_capacity` wait; one more is refused at once with `QueueFull` (RESOURCE_EXHAUSTED on
//! the wire). Waiting callers are served in arrival order (the job channel is FIFO).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{InferenceError, Result};

/// Counts calls in flight (running or waiting) against `slots + queue_capacity`.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    queue_capacity: usize,
}

/// Proof that a call was admitted; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    /// Admission for `slots` running calls and `queue_capacity` waiting ones.
    pub fn new(slots: usize, queue_capacity: usize) -> Self {
        let total = slots
            .saturating_add(queue_capacity)
            .min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(total)),
            queue_capacity,
        }
    }

    /// Admits one call or refuses it with [`InferenceError::QueueFull`].
    pub fn try_admit(&self) -> Result<Admitted> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok(Admitted { _permit: permit }),
            Err(_) => Err(InferenceError::QueueFull {
                capacity: self.queue_capacity,
            }),
        }
    }

    /// Calls that could still be admitted now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_slots_plus_queue() {
        let a = Admission::new(1, 1);
        let first = a.try_admit().expect("slot");
        let _second = a.try_admit().expect("queued");
        assert!(matches!(
            a.try_admit(),
            Err(InferenceError::QueueFull { capacity: 1 })
        ));
        drop(first);
        assert!(a.try_admit().is_ok(), "a finished call frees its place");
    }
}
