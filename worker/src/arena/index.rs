//! The arena's in-memory index: which objects exist, their sizes, checksums, pins and LRU ticks,
//! and the byte accounting (`used + reserved <= capacity`). Pure bookkeeping, no I/O, so the
//! eviction and capacity rules are unit-testable on their own.

use std::collections::HashMap;

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

use crate::error::{Result, WorkerError};

/// One object held in the arena.
#[derive(Debug)]
pub(crate) struct Entry {
    pub size: u64,
    pub crc32: u32,
    /// Primary copies (task outputs, puts) are never evicted, only deleted.
    pub primary: bool,
    /// Temporary pins (readers, running tasks).
    pub pins: u32,
    /// LRU clock value of the last use.
    pub last_use: u64,
    /// The mmap of the file, once someone read it.
    pub bytes: Option<Bytes>,
}

impl Entry {
    fn pinned(&self) -> bool {
        self.primary || self.pins > 0
    }
}

/// What [`Index::commit`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Commit {
    /// A new object was inserted.
    Inserted,
    /// The id already existed (with this crc); the new copy is redundant.
    Existing { crc32: u32 },
}

/// Accounting and metadata of every object; the single source of truth for capacity.
#[derive(Debug)]
pub(crate) struct Index {
    pub entries: HashMap<ObjectId, Entry>,
    pub used: u64,
    pub reserved: u64,
    pub capacity: u64,
    tick: u64,
}

impl Index {
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: HashMap::new(),
            used: 0,
            reserved: 0,
            capacity,
            tick: 0,
        }
    }

    /// Bytes neither used nor reserved.
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used + self.reserved)
    }

    /// Bytes held by pinned objects.
    pub fn pinned_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.pinned())
            .map(|e| e.size)
            .sum()
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Reserve `need` bytes, evicting unpinned objects least recently used first when needed.
    /// Returns the evicted ids (already removed from the index); the caller deletes their files.
    pub fn reserve(&mut self, need: u64) -> Result<Vec<ObjectId>> {
        let free = self.free();
        if need <= free {
            self.reserved += need;
            return Ok(Vec::new());
        }
        let mut candidates: Vec<(u64, ObjectId, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.pinned())
            .map(|(id, e)| (e.last_use, *id, e.size))
            .collect();
        let evictable: u64 = candidates.iter().map(|c| c.2).sum();
        if free + evictable < need {
            return Err(WorkerError::ArenaFull {
                need,
                free,
                capacity: self.capacity,
                pinned: self.pinned_bytes(),
            });
        }
        candidates.sort_unstable();
        let mut victims = Vec::new();
        for (_, id, size) in candidates {
            if self.free() >= need {
                break;
            }
            self.entries.remove(&id);
            self.used -= size;
            victims.push(id);
        }
        self.reserved += need;
        Ok(victims)
    }

    /// Give back reserved bytes that were not used.
    pub fn release(&mut self, bytes: u64) {
        self.reserved = self.reserved.saturating_sub(bytes);
    }

    /// Turn a reservation of `size` bytes into an object.
    pub fn commit(&mut self, id: ObjectId, size: u64, crc32: u32, primary: bool) -> Commit {
        self.release(size);
        let tick = self.next_tick();
        if let Some(e) = self.entries.get_mut(&id) {
            e.primary |= primary;
            e.last_use = tick;
            return Commit::Existing { crc32: e.crc32 };
        }
        self.used += size;
        self.entries.insert(
            id,
            Entry {
                size,
                crc32,
                primary,
                pins: 0,
                last_use: tick,
                bytes: None,
            },
        );
        Commit::Inserted
    }

    /// Mark an object used (for LRU order); `None` if absent.
    pub fn touch(&mut self, id: &ObjectId) -> Option<&mut Entry> {
        let tick = self.next_tick();
        let e = self.entries.get_mut(id)?;
        e.last_use = tick;
        Some(e)
    }

    /// Pin an object for reading and mark it used; `None` if absent.
    pub fn pin(&mut self, id: &ObjectId) -> Option<&Entry> {
        let e = self.touch(id)?;
        e.pins += 1;
        Some(e)
    }

    /// Undo one [`Index::pin`].
    pub fn unpin(&mut self, id: &ObjectId) {
        if let Some(e) = self.entries.get_mut(id) {
            e.pins = e.pins.saturating_sub(1);
        }
    }

    /// Drop an object from the index (pinned or not).
    pub fn remove(&mut self, id: &ObjectId) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        self.used -= e.size;
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ObjectId {
        ObjectId(n << 8)
    }

    #[test]
    fn evicts_least_recently_used_unpinned_first() {
        let mut ix = Index::new(300);
        for n in 1..=3 {
            assert!(ix.reserve(100).unwrap().is_empty());
            ix.commit(id(n), 100, 0, false);
        }
        ix.pin(&id(1));
        ix.unpin(&id(1)); // 1 is now the most recently used
        assert_eq!(ix.reserve(150).unwrap(), vec![id(2), id(3)]);
        assert_eq!(ix.used + ix.reserved, 250);
    }

    #[test]
    fn pinned_and_primary_are_never_evicted() {
        let mut ix = Index::new(300);
        ix.reserve(100).unwrap();
        ix.commit(id(1), 100, 0, true);
        ix.reserve(100).unwrap();
        ix.commit(id(2), 100, 0, false);
        ix.pin(&id(2));
        let err = ix.reserve(150).unwrap_err();
        assert!(matches!(
            err,
            WorkerError::ArenaFull {
                need: 150,
                free: 100,
                capacity: 300,
                pinned: 200
            }
        ));
        ix.unpin(&id(2));
        assert_eq!(ix.reserve(150).unwrap(), vec![id(2)]);
        assert!(ix.entries.contains_key(&id(1)));
    }

    #[test]
    fn used_plus_reserved_never_exceeds_capacity() {
        let mut ix = Index::new(1000);
        let mut held = Vec::new();
        for n in 0..50u64 {
            let need = (n * 37) % 300 + 1;
            if ix.reserve(need).is_ok() {
                held.push(need);
            }
            assert!(ix.used + ix.reserved <= ix.capacity);
            if n % 3 == 0
                && let Some(b) = held.pop()
            {
                ix.release(b);
            }
        }
    }

    #[test]
    fn duplicate_commit_keeps_one_copy() {
        let mut ix = Index::new(100);
        ix.reserve(10).unwrap();
        assert_eq!(ix.commit(id(1), 10, 7, false), Commit::Inserted);
        ix.reserve(10).unwrap();
        assert_eq!(ix.commit(id(1), 10, 7, true), Commit::Existing { crc32: 7 });
        assert_eq!((ix.used, ix.reserved), (10, 0));
        assert!(ix.entries[&id(1)].primary);
    }
}
