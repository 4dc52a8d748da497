//! The arena's in-memory index: which objects exist, where (arena, spilling, spilled), their
//! sizes, checksums, pins and LRU ticks, and the byte accounting (`used + reserved <= capacity`,
//! `spill_used <= spill_capacity`). Pure bookkeeping, no I/O, so the eviction, spill and
//! capacity rules are unit-testable on their own.

use std::collections::HashMap;

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

use crate::error::{Result, WorkerError};

/// Where an object's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the arena file (counted in `used`).
    Arena,
    /// In the arena file, being copied to the spill directory (counted in `used` and, for the
    /// spill file being written, in `spill_used`).
    Spilling,
    /// Only in the spill file (counted in `spill_used`).
    Spilled,
}

/// One object held by this worker (in the arena or spilled).
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
    /// The mmap of the arena file, once someone read it (never of a spill file).
    pub bytes: Option<Bytes>,
    /// Where the bytes are.
    pub place: Place,
}

impl Entry {
    fn pinned(&self) -> bool {
        self.primary || self.pins > 0
    }

    fn in_arena(&self) -> bool {
        self.place != Place::Spilled
    }
}

/// Cumulative spill figures (since the worker started) and the current spill use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpillUsage {
    /// Bound of the spill directory in bytes (0: spilling is off).
    pub capacity: u64,
    /// Bytes in spill files now (including ones being written).
    pub used: u64,
    /// Objects only in the spill directory now.
    pub objects: usize,
    /// Objects moved to the spill directory so far.
    pub spills: u64,
    /// Bytes moved to the spill directory so far.
    pub spilled_bytes: u64,
    /// Objects read back from the spill directory so far (into the arena or straight from disk).
    pub restores: u64,
    /// Bytes read back from the spill directory so far.
    pub restored_bytes: u64,
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
    /// Spill bound, use and counters (`spill.objects` is computed on demand).
    pub spill: SpillUsage,
    tick: u64,
}

impl Index {
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: HashMap::new(),
            used: 0,
            reserved: 0,
            capacity,
            spill: SpillUsage::default(),
            tick: 0,
        }
    }

    /// An index whose primaries may spill into `spill_capacity` bytes of disk.
    pub fn with_spill(capacity: u64, spill_capacity: u64) -> Self {
        let mut ix = Self::new(capacity);
        ix.spill.capacity = spill_capacity;
        ix
    }

    /// Spill bytes neither used nor being written.
    pub fn spill_free(&self) -> u64 {
        self.spill.capacity.saturating_sub(self.spill.used)
    }

    /// Bytes neither used nor reserved.
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used + self.reserved)
    }

    /// Bytes held by pinned objects.
    pub fn pinned_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.pinned() && e.in_arena())
            .map(|e| e.size)
            .sum()
    }

    /// Bytes that spilling could free: unpinned primaries in the arena, within the spill space.
    pub fn spillable_bytes(&self) -> u64 {
        let bytes: u64 = self
            .entries
            .values()
            .filter(|e| e.primary && e.pins == 0 && e.place == Place::Arena)
            .map(|e| e.size)
            .sum();
        bytes.min(self.spill_free())
    }

    /// Whether `need` bytes could be found by evicting and spilling (an estimate: sizes are
    /// not packed exactly, so a `true` may still end in a refusal).
    pub fn could_make_room(&self, need: u64) -> bool {
        let evictable: u64 = self
            .entries
            .values()
            .filter(|e| !e.pinned())
            .map(|e| e.size)
            .sum();
        need <= self.capacity && self.free() + evictable + self.spillable_bytes() >= need
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
            .filter(|(_, e)| !e.pinned() && e.place == Place::Arena)
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
                place: Place::Arena,
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

    /// Drop an object from the index (pinned or not). A spilling object's spill bytes stay
    /// counted until [`Index::finish_spill`] sees it gone.
    pub fn remove(&mut self, id: &ObjectId) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        match e.place {
            Place::Arena | Place::Spilling => self.used -= e.size,
            Place::Spilled => self.spill.used -= e.size,
        }
        Some(e)
    }

    /// Pick the least recently used unpinned primary in the arena that fits in the spill
    /// space, mark it spilling and count its spill file. `None`: nothing can be spilled.
    pub fn start_spill(&mut self) -> Option<(ObjectId, u64)> {
        let spill_free = self.spill_free();
        let (id, size) = self
            .entries
            .iter()
            .filter(|(_, e)| e.primary && e.pins == 0 && e.place == Place::Arena && e.size > 0)
            .filter(|(_, e)| e.size <= spill_free)
            .min_by_key(|(id, e)| (e.last_use, **id))
            .map(|(id, e)| (*id, e.size))?;
        if let Some(e) = self.entries.get_mut(&id) {
            e.place = Place::Spilling;
        }
        self.spill.used += size;
        Some((id, size))
    }

    /// End a spill started by [`Index::start_spill`]. `copied`: the spill file is complete.
    /// Returns true when the object now lives only in the spill file (the caller removes the
    /// arena file); false when the spill was undone (the caller removes the spill file): the
    /// copy failed, or the object was pinned or deleted meanwhile.
    pub fn finish_spill(&mut self, id: &ObjectId, size: u64, copied: bool) -> bool {
        match self.entries.get_mut(id) {
            Some(e) if e.place == Place::Spilling && e.pins == 0 && copied => {
                e.place = Place::Spilled;
                e.bytes = None;
                self.used -= size;
                self.spill.spills += 1;
                self.spill.spilled_bytes += size;
                true
            }
            other => {
                if let Some(e) = other.filter(|e| e.place == Place::Spilling) {
                    e.place = Place::Arena;
                }
                self.spill.used -= size;
                false
            }
        }
    }

    /// A spilled object was copied back into the arena under a reservation of its size: it
    /// is an arena object again, pinned once for the caller. False (reservation released) if
    /// it was deleted meanwhile.
    pub fn finish_restore(&mut self, id: &ObjectId, size: u64) -> bool {
        self.release(size);
        let tick = self.next_tick();
        let Some(e) = self
            .entries
            .get_mut(id)
            .filter(|e| e.place == Place::Spilled)
        else {
            return false;
        };
        e.place = Place::Arena;
        e.pins += 1;
        e.last_use = tick;
        self.used += size;
        self.spill.used -= size;
        self.count_restore(size);
        true
    }

    /// Count one read back from the spill directory.
    pub fn count_restore(&mut self, size: u64) {
        self.spill.restores += 1;
        self.spill.restored_bytes += size;
    }

    /// Spill bound, use and counters now.
    pub fn spill_usage(&self) -> SpillUsage {
        let objects = self
            .entries
            .values()
            .filter(|e| e.place == Place::Spilled)
            .count();
        SpillUsage {
            objects,
            ..self.spill
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
