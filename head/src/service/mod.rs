//! The head's gRPC services: thin handlers for `Head` (clients) and `WorkerRegistry` (workers)
//! over a shared [`HeadContext`]. Handlers decode (via [`convert`]), propose or read, encode;
//! waits wake on the log's applied-index watch.

#[cfg(feature = "chaos-bug")]
mod chaos_bug;
pub mod convert;
mod head;
pub mod leader;
mod registry;
pub mod sessions;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{HeadError, Result};
use crate::log::{CommandLog, LogError};
use crate::soft::Heartbeats;
use crate::state::{Command, ControlState, Outcome};

pub use head::HeadApi;
pub use registry::RegistryApi;

/// Longest a LocateObject/WaitObjects/GetActor call waits, whatever timeout_ms says.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Who this head is, for `ClusterStatus`.
#[derive(Debug, Clone)]
pub struct HeadIdentity {
    /// Raft-style small integer id.
    pub id: u64,
    /// host:port it serves on.
    pub address: String,
    /// Its process id.
    pub pid: u32,
}

/// What every handler shares: the log, the heartbeat table, identity and limits.
pub struct HeadContext {
    /// The command log (and through it, the state).
    pub log: Arc<dyn CommandLog>,
    /// Soft state from heartbeats.
    pub beats: Arc<Heartbeats>,
    /// This head.
    pub identity: HeadIdentity,
    /// Most tasks pending or running before SubmitTask is refused.
    pub max_pending_tasks: u64,
    /// Becomes true when the head starts shutting down, so long waits end at once instead of
    /// holding up the graceful stop.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl HeadContext {
    /// Propose one command; a rejection becomes the matching error.
    async fn propose_one(&self, command: Command) -> Result<Outcome> {
        let outcomes = self.log.propose(vec![command]).await?;
        match outcomes.into_iter().next() {
            Some(Outcome::Rejected(e)) => Err(HeadError::Refused(e)),
            Some(outcome) => Ok(outcome),
            None => Err(HeadError::Log(LogError::Closed)),
        }
    }

    /// Re-run `probe` on the state each time a batch is applied, until it says done or
    /// `timeout_ms` (capped at [`MAX_WAIT`]) passes; returns its last value either way.
    async fn wait_for<T>(
        &self,
        timeout_ms: u64,
        mut probe: impl FnMut(&ControlState) -> Result<(T, bool)>,
    ) -> Result<T> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms).min(MAX_WAIT);
        let mut applied = self.log.applied();
        let mut stopping = self.stopping.clone();
        loop {
            if *stopping.borrow_and_update() {
                return Err(HeadError::ShuttingDown);
            }
            // Mark the current index seen BEFORE reading, so no change slips between the two.
            applied.borrow_and_update();
            let (value, done) = self.log.state().read(&mut probe)?;
            if done || Instant::now() >= deadline {
                return Ok(value);
            }
            let changed = tokio::select! {
                c = tokio::time::timeout_at(deadline, applied.changed()) => c,
                _ = stopping.changed() => return Err(HeadError::ShuttingDown),
            };
            match changed {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(HeadError::Log(LogError::Closed)),
                Err(_) => return self.log.state().read(&mut probe).map(|(v, _)| v),
            }
        }
    }
}
