//! Spilling: when pinned primaries fill the arena, the least recently used unpinned ones are
//! copied to a bounded directory on disk and leave the arena; a read copies one back (CRC-32
//! checked on the way) when room can be made, else serves the checked spill file itself. A
//! corrupt spill file is never served: the copy is dropped and reported removed. One spill or
//! restore runs at a time (`Shared::spill_op`); the index lock is never held across a copy.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

use super::index::Place;
use super::writer::Reservation;
use super::{Arena, CopyKind, ObjectHandle, ObjectWriter, StoredMeta, fsops};
use crate::error::{Result, WorkerError};

/// Where primaries go when the arena is full of them, and how many bytes they may take there.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// The directory (created if missing; the arena's files in it are removed at start: spilled
    /// objects do not survive a restart, like the arena).
    pub dir: PathBuf,
    /// Bound on the bytes of spill files.
    pub capacity: u64,
}

/// The spill directory of a running arena.
#[derive(Debug)]
pub(crate) struct SpillDir {
    pub dir: PathBuf,
    /// Whether the arena created `dir` (and so removes it at the end).
    owns_dir: bool,
}

impl SpillDir {
    /// Create the directory, or clear the arena's files out of an existing one.
    pub(crate) fn open(config: &SpillConfig) -> Result<SpillDir> {
        let dir = std::path::absolute(&config.dir).map_err(|e| {
            WorkerError::io(format!("spill: resolving {}", config.dir.display()), e)
        })?;
        let owns_dir = !dir.exists();
        if owns_dir {
            std::fs::create_dir_all(&dir)
                .map_err(|e| WorkerError::io(format!("spill: creating {}", dir.display()), e))?;
        } else {
            fsops::clean_dir(&dir)?;
        }
        if let Ok(space) = fsops::fs_space(&dir)
            && space.free < config.capacity
        {
            tracing::warn!(dir = %dir.display(), free = space.free, spill_bytes = config.capacity,
                "the spill directory's filesystem has less free space than --spill-bytes");
        }
        Ok(SpillDir { dir, owns_dir })
    }

    /// Remove the spill files, and the directory if the arena created it.
    pub(crate) fn remove_all(&self) -> Result<()> {
        if self.owns_dir {
            std::fs::remove_dir_all(&self.dir)
                .map_err(|e| WorkerError::io(format!("spill: removing {}", self.dir.display()), e))
        } else {
            fsops::clean_dir(&self.dir)
        }
    }
}

/// What a restore produced; the bytes are pinned once for the caller.
pub(crate) enum Restored {
    /// Copied back into the arena: the arena file's mmap.
    Arena(Bytes),
    /// Left on disk (no room could be made): the checked spill file's mmap.
    Spill(Bytes),
    /// The object is not (or no longer) spilled: read it from the arena.
    NotSpilled,
}

/// Copy `src` to a new file `dst`, checking size and CRC-32 on the way. Blocking.
fn copy_checked(id: ObjectId, src: &Path, dst: &Path, meta: StoredMeta) -> Result<()> {
    let io = |what: &str, p: &Path, e| WorkerError::io(format!("spill: {what} {}", p.display()), e);
    let mut from = std::fs::File::open(src).map_err(|e| io("opening", src, e))?;
    let mut to = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| io("creating", dst, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).map_err(|e| io("reading", src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(|e| io("writing", dst, e))?;
        total += n as u64;
    }
    let got = hasher.finalize();
    if total != meta.size || got != meta.crc32 {
        return Err(WorkerError::SpillCorrupt {
            object: id,
            expected: meta.crc32,
            got,
        });
    }
    Ok(())
}

/// Map a spill file and check its size and CRC-32 over the mapping. Blocking.
fn map_checked(id: ObjectId, path: &Path, meta: StoredMeta) -> Result<Bytes> {
    let corrupt = |got| WorkerError::SpillCorrupt {
        object: id,
        expected: meta.crc32,
        got,
    };
    let bytes = match fsops::map_file(path, meta.size) {
        Err(WorkerError::SizeMismatch { .. }) => return Err(corrupt(0)),
        other => other?,
    };
    let got = crc32fast::hash(&bytes);
    if got != meta.crc32 {
        return Err(corrupt(got));
    }
    Ok(bytes)
}

impl Arena {
    /// Reserve `need` arena bytes: from free space, else by evicting pulled copies, else (with
    /// a spill directory) by spilling unpinned primaries, least recently used first.
    pub(crate) fn reserve(&self, need: u64) -> Result<()> {
        match self.reserve_evicting(need) {
            Err(WorkerError::ArenaFull { .. }) if self.shared.spill.is_some() => {}
            other => return other,
        }
        let _op = self.shared.spill_op();
        self.reserve_spilling(need)
    }

    /// [`Arena::reserve`] with `spill_op` held: spill one object at a time until `need` fits.
    fn reserve_spilling(&self, need: u64) -> Result<()> {
        let mut undone = 0;
        loop {
            match self.reserve_evicting(need) {
                Err(WorkerError::ArenaFull { .. }) => {}
                other => return other,
            }
            let victim = {
                let mut ix = self.shared.lock();
                if ix.could_make_room(need) && undone < 16 {
                    ix.start_spill()
                } else {
                    None
                }
            };
            let Some((id, size)) = victim else {
                return Err(self.full_error(need));
            };
            if !self.spill_one(id, size)? {
                undone += 1;
            }
        }
    }

    fn full_error(&self, need: u64) -> WorkerError {
        let ix = self.shared.lock();
        WorkerError::ArenaAndSpillFull {
            need,
            free: ix.free(),
            capacity: ix.capacity,
            pinned: ix.pinned_bytes(),
            spill_free: ix.spill_free(),
            spill_capacity: ix.spill.capacity,
        }
    }

    /// Copy one object (marked spilling) to the spill directory and drop its arena file.
    /// Ok(false): undone because it was pinned or deleted meanwhile.
    fn spill_one(&self, id: ObjectId, size: u64) -> Result<bool> {
        let Some(spill) = &self.shared.spill else {
            return Ok(false);
        };
        let src = fsops::object_path(&self.shared.dir, &id);
        let temp = fsops::temp_path(&spill.dir, &id, self.shared.next_seq());
        let dst = fsops::object_path(&spill.dir, &id);
        let copied = std::fs::copy(&src, &temp)
            .and_then(|n| match n == size {
                true => Ok(()),
                false => Err(std::io::Error::other(format!("copied {n} of {size} bytes"))),
            })
            .and_then(|()| std::fs::rename(&temp, &dst));
        if copied.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        let mut ix = self.shared.lock();
        let done = ix.finish_spill(&id, size, copied.is_ok());
        // Under the lock, so a delete and a new put of the same id cannot come in between.
        if done {
            let _ = std::fs::remove_file(&src);
        } else if copied.is_ok() {
            let _ = std::fs::remove_file(&dst);
        }
        drop(ix);
        copied.map_err(|e| WorkerError::io(format!("spill: copying object {id} to disk"), e))?;
        if done {
            tracing::debug!(object_id = %id, size, "spilled to disk");
        }
        Ok(done)
    }

    /// Bring a spilled object back: into the arena if room can be made, else checked from its
    /// spill file. Blocking (file copies).
    pub(crate) fn restore(&self, id: &ObjectId) -> Result<Restored> {
        let Some(spill) = &self.shared.spill else {
            return Ok(Restored::NotSpilled);
        };
        let _op = self.shared.spill_op();
        let meta = {
            let ix = self.shared.lock();
            let e = ix.entries.get(id).ok_or(WorkerError::ObjectNotFound(*id))?;
            if e.place != Place::Spilled {
                return Ok(Restored::NotSpilled);
            }
            StoredMeta {
                size: e.size,
                crc32: e.crc32,
            }
        };
        let spill_path = fsops::object_path(&spill.dir, id);
        match self.reserve_spilling(meta.size) {
            Ok(()) => {}
            Err(WorkerError::ArenaFull { .. } | WorkerError::ArenaAndSpillFull { .. }) => {
                let bytes = map_checked(*id, &spill_path, meta).map_err(|e| self.on_corrupt(e))?;
                let mut ix = self.shared.lock();
                ix.pin(id).ok_or(WorkerError::ObjectNotFound(*id))?;
                ix.count_restore(meta.size);
                return Ok(Restored::Spill(bytes));
            }
            Err(e) => return Err(e),
        }
        let mut reservation = Reservation::new(Arc::clone(&self.shared), meta.size);
        let temp = fsops::temp_path(&self.shared.dir, id, self.shared.next_seq());
        if let Err(e) = copy_checked(*id, &spill_path, &temp, meta) {
            let _ = std::fs::remove_file(&temp);
            return Err(self.on_corrupt(e));
        }
        let path = fsops::object_path(&self.shared.dir, id);
        {
            let mut ix = self.shared.lock();
            let spilled = ix
                .entries
                .get(id)
                .is_some_and(|e| e.place == Place::Spilled);
            let renamed = spilled && std::fs::rename(&temp, &path).is_ok();
            if !renamed {
                let _ = std::fs::remove_file(&temp);
                return Err(WorkerError::ObjectNotFound(*id));
            }
            reservation.consume();
            ix.finish_restore(id, meta.size);
            let _ = std::fs::remove_file(&spill_path);
        }
        tracing::debug!(object_id = %id, size = meta.size, "restored from disk");
        match fsops::map_file(&path, meta.size) {
            Ok(bytes) => {
                if let Some(e) = self.shared.lock().entries.get_mut(id) {
                    e.bytes = Some(bytes.clone());
                }
                Ok(Restored::Arena(bytes))
            }
            Err(e) => {
                self.shared.lock().unpin(id);
                Err(e)
            }
        }
    }

    /// [`Arena::get`] from async code: on the blocking pool when the object must be restored.
    pub async fn get_async(&self, id: &ObjectId) -> Result<ObjectHandle> {
        if !self.is_spilled(id) {
            return self.get(id);
        }
        let (arena, id) = (self.clone(), *id);
        tokio::task::spawn_blocking(move || arena.get(&id))
            .await
            .map_err(|_| WorkerError::ShuttingDown)?
    }

    /// [`Arena::writer`] from async code: on the blocking pool when room must be made by
    /// spilling.
    pub async fn writer_async(
        &self,
        id: ObjectId,
        size: u64,
        kind: CopyKind,
    ) -> Result<ObjectWriter> {
        if self.shared.spill.is_none() || self.shared.lock().free() >= size {
            return self.writer(id, size, kind);
        }
        let arena = self.clone();
        tokio::task::spawn_blocking(move || arena.writer(id, size, kind))
            .await
            .map_err(|_| WorkerError::ShuttingDown)?
    }

    /// Whether the object is only in the spill directory now.
    pub fn is_spilled(&self, id: &ObjectId) -> bool {
        let ix = self.shared.lock();
        ix.entries
            .get(id)
            .is_some_and(|e| e.place == Place::Spilled)
    }

    /// A corrupt spill file: drop the copy (index and file) and report it removed, so the
    /// head rebuilds it from lineage or reports it lost; other errors pass through.
    fn on_corrupt(&self, e: WorkerError) -> WorkerError {
        if let WorkerError::SpillCorrupt { object, .. } = &e {
            tracing::error!(object_id = %object, error = %e, "corrupt spill file; copy dropped");
            self.delete(&[*object]);
            self.shared.evictions.note([*object]);
        }
        e
    }
}
