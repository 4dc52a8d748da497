//! The applied-effects channel from the log's owner task (the Raft node's apply loop) to the
//! runtime: bounded, and it never blocks the sender. The apply loop must not wait for the
//! runtime: the runtime proposes into the log and waits for the apply, so a full channel the
//! apply loop awaited would deadlock (and stop heartbeats and elections meanwhile). So a batch
//! that finds the channel full is dropped and the channel is marked *lagged*; the receiver,
//! seeing the mark, discards what is still queued and reports [`Received::Lagged`], and the
//! runtime resynchronises from the applied state as a new leader does (re-dispatching running
//! tasks, restarting starting actors).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::AppliedBatch;

/// Applied batches that may wait for the runtime before the channel drops new ones and lags.
/// One batch is one apply pass (many commands under group commit); the runtime turns each into
/// spawned calls at once, so it stays near empty unless the runtime is stuck.
pub const EFFECTS_QUEUE: usize = 4_096;

/// The runtime went away (the channel is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the runtime's effects channel is closed")]
pub struct EffectsClosed;

/// The sending half, held by the log's owner. Cloning shares the channel.
#[derive(Debug, Clone)]
pub struct EffectsSender {
    tx: mpsc::Sender<AppliedBatch>,
    lag: Arc<Lag>,
}

/// The receiving half, held by the runtime.
#[derive(Debug)]
pub struct EffectsReceiver {
    rx: mpsc::Receiver<AppliedBatch>,
    lag: Arc<Lag>,
}

#[derive(Debug, Default)]
struct Lag {
    /// Set when a batch was dropped and the receiver has not yet resynchronised.
    lagged: AtomicBool,
    /// Batches dropped since the channel was made (for logs and tests).
    dropped: AtomicU64,
}

/// What the runtime receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// The next applied batch, in log order.
    Batch(AppliedBatch),
    /// Batches were dropped (and those still queued discarded): resynchronise from the state,
    /// which already includes every one of them.
    Lagged,
}

/// A bounded effects channel holding up to `bound` batches.
pub fn effects_channel(bound: usize) -> (EffectsSender, EffectsReceiver) {
    let (tx, rx) = mpsc::channel(bound.max(1));
    let lag = Arc::new(Lag::default());
    (
        EffectsSender {
            tx,
            lag: Arc::clone(&lag),
        },
        EffectsReceiver { rx, lag },
    )
}

impl EffectsSender {
    /// Hand `batch` over without waiting: when the channel is full the batch is dropped and the
    /// channel marked lagged (`Ok`); `Err` only once the receiver is gone.
    pub fn send(&self, batch: AppliedBatch) -> Result<(), EffectsClosed> {
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(b)) => {
                let dropped = self.lag.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.lag.lagged.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        index = b.index,
                        dropped,
                        bound = self.tx.max_capacity(),
                        "the runtime lags behind the applied log: dropping effects; it will \
                         resynchronise from the state"
                    );
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(EffectsClosed),
        }
    }

    /// Batches dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lag.dropped.load(Ordering::Relaxed)
    }
}

impl EffectsReceiver {
    /// The next batch, or [`Received::Lagged`] once after batches were dropped; `None` when
    /// every sender is gone and nothing is queued.
    pub async fn recv(&mut self) -> Option<Received> {
        if self.take_lag() {
            return Some(Received::Lagged);
        }
        let batch = self.rx.recv().await?;
        // A drop may have happened while this batch waited: the state covers it too.
        if self.take_lag() {
            return Some(Received::Lagged);
        }
        Some(Received::Batch(batch))
    }

    /// Batches dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lag.dropped.load(Ordering::Relaxed)
    }

    /// Clears the lag mark and discards what is queued: every queued batch was applied before
    /// it was sent, so the state read after this covers it.
    fn take_lag(&mut self) -> bool {
        if !self.lag.lagged.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut discarded = 0usize;
        while self.rx.try_recv().is_ok() {
            discarded += 1;
        }
        tracing::warn!(
            discarded,
            "effects lagged: resynchronising the runtime from the state"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(index: u64) -> AppliedBatch {
        AppliedBatch {
            index,
            effects: vec![],
        }
    }

    #[tokio::test]
    async fn in_order_until_full_then_lagged_once_then_in_order_again() {
        let (tx, mut rx) = effects_channel(2);
        tx.send(batch(1)).unwrap();
        tx.send(batch(2)).unwrap();
        // Full: dropped, never blocks, still Ok.
        tx.send(batch(3)).unwrap();
        tx.send(batch(4)).unwrap();
        assert_eq!(rx.dropped(), 2);
        // The receiver learns of the lag first; what was queued is covered by the resync.
        assert_eq!(rx.recv().await, Some(Received::Lagged));
        tx.send(batch(5)).unwrap();
        assert_eq!(rx.recv().await, Some(Received::Batch(batch(5))));
        tx.send(batch(6)).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(Received::Batch(batch(6))));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_drop_while_a_batch_waited_reports_lag_instead_of_the_batch() {
        let (tx, mut rx) = effects_channel(1);
        tx.send(batch(1)).unwrap();
        tx.send(batch(2)).unwrap(); // dropped
        assert_eq!(rx.recv().await, Some(Received::Lagged));
        assert!(rx.rx.try_recv().is_err(), "the queued batch was discarded");
    }

    #[tokio::test]
    async fn send_fails_only_when_the_receiver_is_gone() {
        let (tx, rx) = effects_channel(1);
        drop(rx);
        assert_eq!(tx.send(batch(1)), Err(EffectsClosed));
    }
}
