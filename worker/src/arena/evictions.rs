//! Eviction notices: ids of copies the arena dropped (evicted, or a corrupt spill file), on
//! their way to the head (`ReportObjectsRemoved`). The arena notes them under its lock, so
//! noting never blocks or waits; they coalesce in a set bounded by [`MAX_PENDING_EVICTIONS`]
//! (an id noted twice is reported once), and the forwarder takes them in batches of at most
//! [`REPORT_BATCH`]. Past the bound (the head unreachable for long while the arena churns),
//! further ids are dropped and counted: the head then lists a copy that is gone, which a
//! reader meets as a failed fetch from that location, as when a report fails.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use xnai_proto::ids::ObjectId;

/// Ids waiting to be reported, at most (16 bytes each: 1 MiB).
pub const MAX_PENDING_EVICTIONS: usize = 65_536;

/// Ids in one `ReportObjectsRemoved` call (33 bytes each on the wire: well under the 4 MiB
/// message limit).
pub const REPORT_BATCH: usize = 4_096;

#[derive(Debug, Default)]
struct Pending {
    ids: BTreeSet<ObjectId>,
    /// Ids dropped because the set was full, since the start.
    dropped: u64,
    /// The arena (the only sender) is gone.
    closed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Mutex<Pending>,
    ready: Notify,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The arena's half: notes removed ids. Dropping it ends the receiver once drained.
#[derive(Debug)]
pub struct EvictionSender(Arc<Inner>);

/// The forwarder's half: takes noted ids in batches.
#[derive(Debug)]
pub struct EvictionReceiver(Arc<Inner>);

/// A bounded, coalescing notice set and its two halves.
pub fn eviction_notices() -> (EvictionSender, EvictionReceiver) {
    let inner = Arc::new(Inner::default());
    (EvictionSender(Arc::clone(&inner)), EvictionReceiver(inner))
}

impl EvictionSender {
    /// Note `ids` as removed; never blocks on the receiver.
    pub fn note(&self, ids: impl IntoIterator<Item = ObjectId>) {
        self.0.note(ids);
    }
}

impl Inner {
    fn note(&self, ids: impl IntoIterator<Item = ObjectId>) {
        let mut p = self.lock();
        let mut dropped = 0u64;
        for id in ids {
            if p.ids.len() < MAX_PENDING_EVICTIONS || p.ids.contains(&id) {
                p.ids.insert(id);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            p.dropped += dropped;
            tracing::warn!(
                dropped,
                total_dropped = p.dropped,
                bound = MAX_PENDING_EVICTIONS,
                "too many eviction reports waiting for the head: dropping some"
            );
        }
        drop(p);
        self.ready.notify_one();
    }
}

impl Drop for EvictionSender {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

impl EvictionReceiver {
    /// Up to [`REPORT_BATCH`] noted ids, waiting for one; `None` once the arena is gone and
    /// nothing is left.
    pub async fn recv(&mut self) -> Option<Vec<ObjectId>> {
        loop {
            // Register interest before looking, so a note in between is not missed.
            let ready = self.0.ready.notified();
            {
                let mut p = self.0.lock();
                if let Some(batch) = take_batch(&mut p) {
                    return Some(batch);
                }
                if p.closed {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// Noted ids now, without waiting (`None` when there are none).
    pub fn try_recv(&mut self) -> Option<Vec<ObjectId>> {
        take_batch(&mut self.0.lock())
    }

    /// Ids dropped because the set was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.0.lock().dropped
    }
}

fn take_batch(p: &mut Pending) -> Option<Vec<ObjectId>> {
    if p.ids.is_empty() {
        return None;
    }
    let mut batch = Vec::with_capacity(p.ids.len().min(REPORT_BATCH));
    while batch.len() < REPORT_BATCH {
        match p.ids.pop_first() {
            Some(id) => batch.push(id),
            None => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_coalesce_come_in_batches_and_end_when_the_arena_goes() {
        let (tx, mut rx) = eviction_notices();
        tx.note([ObjectId(2), ObjectId(1)]);
        tx.note([ObjectId(1)]);
        assert_eq!(rx.recv().await, Some(vec![ObjectId(1), ObjectId(2)]));
        tx.note((0..REPORT_BATCH as u128 + 5).map(ObjectId));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(REPORT_BATCH));
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(5));
        assert_eq!(rx.try_recv(), None);
        tx.note([ObjectId(9)]);
        drop(tx);
        assert_eq!(rx.recv().await, Some(vec![ObjectId(9)]), "drained first");
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_set_is_bounded_and_counts_what_it_drops() {
        let (tx, mut rx) = eviction_notices();
        tx.note((0..MAX_PENDING_EVICTIONS as u128 + 10).map(ObjectId));
        assert_eq!(rx.dropped(), 10);
        // An id already waiting is not a drop.
        tx.note([ObjectId(0)]);
        assert_eq!(rx.dropped(), 10);
        let mut got = 0;
        while let Some(b) = rx.try_recv() {
            got += b.len();
        }
        assert_eq!(got, MAX_PENDING_EVICTIONS);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_a_note() {
        let (tx, mut rx) = eviction_notices();
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.note([ObjectId(7)]);
        assert_eq!(waiter.await.unwrap(), Some(vec![ObjectId(7)]));
    }
}
