//! [`MemLog`]: an in-memory [`CommandLog`] for runtime tests on paused time. A proposal is
//! applied at once, in the caller's task, so nothing waits on another thread (a sled flush
//! runs on sled's own threads, and a paused tokio clock would race past it).

use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::log::{
    AppliedBatch, CommandLog, EFFECTS_QUEUE, EffectsReceiver, EffectsSender, LogError, SharedState,
    effects_channel,
};
use crate::state::{Command, Outcome};

/// The in-memory log. Thread-safe; applies one proposal at a time.
pub struct MemLog {
    state: SharedState,
    applied: watch::Sender<u64>,
    /// The next index and the runtime's batch channel (dropped on close).
    inner: Mutex<(u64, Option<EffectsSender>)>,
}

impl MemLog {
    /// An empty log and the stream of applied batches for the runtime.
    pub fn new() -> (Self, EffectsReceiver) {
        Self::with_bound(EFFECTS_QUEUE)
    }

    /// Like [`MemLog::new`] with an effects channel of `bound` batches (tests of the lag path).
    pub fn with_bound(bound: usize) -> (Self, EffectsReceiver) {
        let (tx, rx) = effects_channel(bound);
        let log = Self {
            state: SharedState::default(),
            applied: watch::channel(0).0,
            inner: Mutex::new((0, Some(tx))),
        };
        (log, rx)
    }

    /// Batches the effects channel dropped (it was full) so far.
    pub fn dropped_batches(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.as_ref().map_or(0, EffectsSender::dropped)
    }
}

impl CommandLog for MemLog {
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> BoxFuture<'static, Result<Vec<Outcome>, LogError>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (next, batches) = &mut *inner;
        let result = match batches {
            None => Err(LogError::Closed),
            Some(batches) => {
                let mut effects = Vec::new();
                let outcomes = self.state.write(|s| {
                    commands
                        .into_iter()
                        .map(|c| {
                            let (outcome, fx) = s.apply(c);
                            effects.extend(fx);
                            outcome
                        })
                        .collect::<Vec<_>>()
                });
                *next += outcomes.len() as u64;
                let _ = batches.send(AppliedBatch {
                    index: *next,
                    effects,
                });
                self.applied.send_replace(*next);
                Ok(outcomes)
            }
        };
        Box::pin(async move { result })
    }

    fn state(&self) -> &SharedState {
        &self.state
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1 = None;
        Box::pin(async {})
    }
}
