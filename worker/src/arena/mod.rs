//! The tmpfs arena: this worker's object store and the single owner of arena state.
//!
//! Objects are immutable files named by hex id in one directory with a hard byte capacity.
//! Capacity is reserved before any byte is written (evicting unpinned pulled copies LRU, then
//! spilling unpinned primaries LRU to a bounded disk directory, see [`spill`]), files appear
//! under their final name only when complete and checksummed, and reads are zero-copy views of
//! an mmap. Thread-safe: one short mutex guards the index.

mod evictions;
mod fsops;
mod index;
mod local;
pub mod pressure;
mod spill;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

pub use evictions::{
    EvictionReceiver, EvictionSender, MAX_PENDING_EVICTIONS, REPORT_BATCH, eviction_notices,
};
pub use fsops::{FsSpace, fs_space, is_tmpfs};
pub use index::SpillUsage;
pub use local::{CreatedPut, LocalPuts};
pub use spill::SpillConfig;
pub use writer::{DEFAULT_PUT_IDLE, ObjectWriter};

use crate::error::{Result, WorkerError};
use index::{Index, Place};
use spill::{Restored, SpillDir};
use writer::Reservation;

/// Whether a copy is the object's primary (pinned until deleted) or a pulled secondary copy
/// (evictable, least recently used first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// A task output or a put object.
    Primary,
    /// A copy pulled from another worker for a task.
    Pulled,
}

/// Size and checksum of a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMeta {
    /// Bytes.
    pub size: u64,
    /// CRC-32 (IEEE) of the bytes.
    pub crc32: u32,
}

/// Where and how big the arena is.
#[derive(Debug, Clone)]
pub struct ArenaConfig {
    /// The directory; `None` makes a fresh `/dev/shm/xnai-arena-<random hex>`.
    pub dir: Option<PathBuf>,
    /// Hard capacity in bytes.
    pub capacity: u64,
    /// Where full arenas spill primaries, if anywhere.
    pub spill: Option<SpillConfig>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    /// Whether the arena created `dir` (and so removes it at the end).
    owns_dir: bool,
    index: Mutex<Index>,
    seq: AtomicU64,
    /// Removed copies waiting to be reported to the head (bounded, coalescing).
    evictions: EvictionSender,
    spill: Option<SpillDir>,
    /// How long a streamed put may send nothing before it is dropped, in milliseconds.
    put_idle_ms: AtomicU64,
    /// Held by the one spill or restore in progress (never while waiting for `index`).
    spill_op: Mutex<()>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated in a way that
        // matters more than stopping would, so keep serving.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn spill_op(&self) -> MutexGuard<'_, ()> {
        self.spill_op.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the arena; cheap to clone, shareable across threads.
#[derive(Clone)]
pub struct Arena {
    shared: Arc<Shared>,
}

/// A readable object: zero-copy bytes of its mmap (of the arena file, or of its checked spill
/// file when no arena room could be made), pinned (never evicted or spilled) while alive.
pub struct ObjectHandle {
    id: ObjectId,
    meta: StoredMeta,
    bytes: Bytes,
    shared: Arc<Shared>,
}

impl ObjectHandle {
    /// The object id.
    pub fn id(&self) -> ObjectId {
        self.id
    }
    /// Size and checksum.
    pub fn meta(&self) -> StoredMeta {
        self.meta
    }
    /// The bytes (a view of the mmap; clones are cheap and do not copy).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl Drop for ObjectHandle {
    fn drop(&mut self) {
        self.shared.lock().unpin(&self.id);
    }
}

/// Where a stored object's file is, for a same-host reader that maps it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFile {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// `st_dev` of the file.
    pub device: u64,
    /// `st_ino` of the file.
    pub inode: u64,
    /// Size and checksum.
    pub meta: StoredMeta,
}

/// Usage figures for heartbeats and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaUsage {
    /// Bytes of stored objects.
    pub used: u64,
    /// Bytes reserved by writes in progress.
    pub reserved: u64,
    /// Hard capacity.
    pub capacity: u64,
    /// Number of objects.
    pub objects: usize,
}

impl Arena {
    /// Open (or create) the arena directory, refusing a capacity its filesystem cannot hold.
    /// Stale arena files in an existing directory are removed: the arena is volatile.
    pub fn open(config: ArenaConfig) -> Result<(Arena, EvictionReceiver)> {
        let dir = config.dir.clone().unwrap_or_else(fsops::default_dir);
        // Absolute, so same-host clients can be told where object files are.
        let dir = std::path::absolute(&dir)
            .map_err(|e| WorkerError::io(format!("arena: resolving {}", dir.display()), e))?;
        let owns_dir = !dir.exists();
        if owns_dir {
            let parent = dir
                .parent()
                .filter(|p| p.exists())
                .unwrap_or(Path::new("/"));
            fsops::check_capacity(parent, parent, config.capacity)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| WorkerError::io(format!("arena: creating {}", dir.display()), e))?;
        } else {
            fsops::clean_dir(&dir)?;
            fsops::check_capacity(&dir, &dir, config.capacity)?;
        }
        if fsops::is_tmpfs(&dir) == Some(false) {
            tracing::warn!(dir = %dir.display(), "arena directory is not on tmpfs; objects will hit the disk");
        }
        let spill = config.spill.as_ref().map(SpillDir::open).transpose()?;
        let spill_capacity = config.spill.as_ref().map_or(0, |s| s.capacity);
        let (tx, rx) = eviction_notices();
        let shared = Shared {
            dir,
            owns_dir,
            index: Mutex::new(Index::with_spill(config.capacity, spill_capacity)),
            seq: AtomicU64::new(0),
            evictions: tx,
            spill,
            put_idle_ms: AtomicU64::new(writer::DEFAULT_PUT_IDLE.as_millis() as u64),
            spill_op: Mutex::new(()),
        };
        Ok((
            Arena {
                shared: Arc::new(shared),
            },
            rx,
        ))
    }

    /// The arena directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Hard capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.shared.lock().capacity
    }

    /// Current usage.
    pub fn usage(&self) -> ArenaUsage {
        let ix = self.shared.lock();
        ArenaUsage {
            used: ix.used,
            reserved: ix.reserved,
            capacity: ix.capacity,
            objects: ix.entries.len(),
        }
    }

    /// Spill bound, use and counters.
    pub fn spill_usage(&self) -> SpillUsage {
        self.shared.lock().spill_usage()
    }

    /// Reserve `size` bytes (evicting, then spilling, if needed) and open a writer for object
    /// `id`. Blocking when it spills (file copies to disk).
    pub fn writer(&self, id: ObjectId, size: u64, kind: CopyKind) -> Result<ObjectWriter> {
        self.reserve(size)?;
        let reservation = Reservation::new(Arc::clone(&self.shared), size);
        ObjectWriter::create(reservation, id, size, kind)
    }

    /// Reserve `need` bytes from free space or by evicting unpinned pulled copies.
    fn reserve_evicting(&self, need: u64) -> Result<()> {
        let victims = {
            let mut ix = self.shared.lock();
            let victims = ix.reserve(need)?;
            for v in &victims {
                let _ = std::fs::remove_file(fsops::object_path(&self.shared.dir, v));
            }
            victims
        };
        if !victims.is_empty() {
            tracing::info!(evicted = victims.len(), need, "arena evicted pulled copies");
            self.shared.evictions.note(victims);
        }
        Ok(())
    }

    /// Store a whole object from memory (blocking file I/O; call from a blocking context for
    /// big objects).
    pub fn store(&self, id: ObjectId, data: &[u8], kind: CopyKind) -> Result<StoredMeta> {
        let mut w = self.writer(id, data.len() as u64, kind)?;
        w.write(data)?;
        w.commit(None)
    }

    /// Whether the object is here.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.shared.lock().entries.contains_key(id)
    }

    /// Size and checksum of an object, if present.
    pub fn meta(&self, id: &ObjectId) -> Option<StoredMeta> {
        let ix = self.shared.lock();
        ix.entries.get(id).map(|e| StoredMeta {
            size: e.size,
            crc32: e.crc32,
        })
    }

    /// Open an object for reading; it stays pinned while the handle lives. A spilled object
    /// is restored first (blocking: a file copy).
    pub fn get(&self, id: &ObjectId) -> Result<ObjectHandle> {
        let (meta, cached, place) = {
            let mut ix = self.shared.lock();
            let e = ix.pin(id).ok_or(WorkerError::ObjectNotFound(*id))?;
            let meta = StoredMeta {
                size: e.size,
                crc32: e.crc32,
            };
            (meta, e.bytes.clone(), e.place)
        };
        let handle = |bytes| ObjectHandle {
            id: *id,
            meta,
            bytes,
            shared: Arc::clone(&self.shared),
        };
        if place == Place::Spilled {
            self.shared.lock().unpin(id);
            match self.restore(id)? {
                Restored::Arena(bytes) | Restored::Spill(bytes) => return Ok(handle(bytes)),
                // Restored meanwhile by another reader: read it from the arena.
                Restored::NotSpilled => return self.get(id),
            }
        }
        if let Some(bytes) = cached {
            return Ok(handle(bytes));
        }
        // Built before mapping so an error unpins on drop.
        let mut h = handle(Bytes::new());
        let path = fsops::object_path(&self.shared.dir, id);
        let bytes = fsops::map_file(&path, meta.size).map_err(|e| match e {
            WorkerError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                WorkerError::ObjectNotFound(*id)
            }
            other => other,
        })?;
        if let Some(e) = self.shared.lock().entries.get_mut(id) {
            e.bytes = Some(bytes.clone());
        }
        h.bytes = bytes;
        Ok(h)
    }

    /// Where the object's file is (and marks it used), for a same-host client that maps it.
    /// The file is immutable; if the object is evicted or deleted later it is only unlinked, so
    /// a mapping made from it stays valid.
    /// A spilled object is restored first; when no arena room can be made its (checked)
    /// spill file is named instead. Blocking when it restores.
    pub fn file_of(&self, id: &ObjectId) -> Result<ObjectFile> {
        let (meta, place) = {
            let mut ix = self.shared.lock();
            let e = ix.touch(id).ok_or(WorkerError::ObjectNotFound(*id))?;
            let meta = StoredMeta {
                size: e.size,
                crc32: e.crc32,
            };
            (meta, e.place)
        };
        let mut path = fsops::object_path(&self.shared.dir, id);
        if place == Place::Spilled {
            let restored = self.restore(id)?;
            if let (Restored::Spill(_), Some(spill)) = (&restored, &self.shared.spill) {
                path = fsops::object_path(&spill.dir, id);
            }
            if !matches!(restored, Restored::NotSpilled) {
                self.shared.lock().unpin(id);
            }
        }
        let m = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WorkerError::ObjectNotFound(*id),
            _ => WorkerError::io(format!("arena: stat {}", path.display()), e),
        })?;
        use std::os::unix::fs::MetadataExt;
        Ok(ObjectFile {
            device: m.dev(),
            inode: m.ino(),
            path,
            meta,
        })
    }

    /// Delete objects (primary or not); returns the ids that were present.
    pub fn delete(&self, ids: &[ObjectId]) -> Vec<ObjectId> {
        let mut ix = self.shared.lock();
        let mut gone = Vec::new();
        for id in ids {
            if let Some(e) = ix.remove(id) {
                let _ = std::fs::remove_file(fsops::object_path(&self.shared.dir, id));
                if let (Place::Spilled, Some(spill)) = (e.place, &self.shared.spill) {
                    let _ = std::fs::remove_file(fsops::object_path(&spill.dir, id));
                }
                gone.push(*id);
            }
        }
        gone
    }

    /// Ids of every stored object.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        self.shared.lock().entries.keys().copied().collect()
    }

    /// Remove every object; remove the directory too if the arena created it.
    pub fn remove_all(&self) -> Result<()> {
        let mut ix = self.shared.lock();
        let ids: Vec<ObjectId> = ix.entries.keys().copied().collect();
        for id in &ids {
            ix.remove(id);
        }
        if let Some(spill) = &self.shared.spill
            && let Err(e) = spill.remove_all()
        {
            tracing::warn!(error = %e, "could not remove the spill directory");
        }
        let dir = &self.shared.dir;
        if self.shared.owns_dir {
            std::fs::remove_dir_all(dir)
                .map_err(|e| WorkerError::io(format!("arena: removing {}", dir.display()), e))
        } else {
            fsops::clean_dir(dir)
        }
    }
}

#[cfg(test)]
mod spill_tests;
#[cfg(test)]
mod tests;
