//! Writing one object: capacity is reserved first ([`Reservation`]), bytes go straight into a
//! temporary file while the CRC-32 is computed, and `commit` checks size and checksum before the
//! rename makes the object visible. Dropping an uncommitted writer removes the temp file and
//! releases the reservation, so there is never a partial object. A same-host client may fill
//! the temporary file itself ([`ObjectWriter::adopt_file`] then checks and checksums it).
//! A streamed put that stops sending for the put idle timeout is dropped by its handler, which
//! releases its reservation.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use xnai_proto::ids::ObjectId;

use super::index::Commit;
use super::{Arena, CopyKind, Shared, StoredMeta, fsops};
use crate::error::{Result, WorkerError};

/// Default of `--put-idle-timeout`: how long a `PutObject` stream may send nothing.
pub const DEFAULT_PUT_IDLE: Duration = Duration::from_secs(30);

impl Arena {
    /// How long a streamed put may send nothing before it is dropped and its reservation
    /// released ([`DEFAULT_PUT_IDLE`] unless set).
    pub fn put_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.put_idle_ms.load(Ordering::Relaxed))
    }

    /// Set the put idle timeout (`--put-idle-timeout`; at least 1 ms).
    pub fn set_put_idle_timeout(&self, idle: Duration) {
        let ms = (idle.as_millis() as u64).max(1);
        self.shared.put_idle_ms.store(ms, Ordering::Relaxed);
    }
}

/// Bytes reserved in the arena; released on drop unless consumed by a commit.
pub(crate) struct Reservation {
    shared: Arc<Shared>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(shared: Arc<Shared>, bytes: u64) -> Self {
        Self { shared, bytes }
    }

    /// The bytes were accounted elsewhere (an object now holds them): release nothing on drop.
    pub(crate) fn consume(&mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.shared.lock().release(self.bytes);
        }
    }
}

/// An object being written. Not visible to readers until [`ObjectWriter::commit`].
pub struct ObjectWriter {
    reservation: Reservation,
    id: ObjectId,
    size: u64,
    kind: CopyKind,
    file: Option<File>,
    temp: PathBuf,
    written: u64,
    hasher: crc32fast::Hasher,
}

impl ObjectWriter {
    pub(crate) fn create(
        reservation: Reservation,
        id: ObjectId,
        size: u64,
        kind: CopyKind,
    ) -> Result<Self> {
        let shared = &reservation.shared;
        let seq = shared.next_seq();
        let temp = fsops::temp_path(&shared.dir, &id, seq);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| WorkerError::io(format!("arena: creating {}", temp.display()), e))?;
        Ok(Self {
            reservation,
            id,
            size,
            kind,
            file: Some(file),
            temp,
            written: 0,
            hasher: crc32fast::Hasher::new(),
        })
    }

    /// The object being written.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The announced size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file (not visible as an object until committed).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// `(st_dev, st_ino)` of the temporary file, so a same-host client can check it opened it.
    pub fn file_identity(&self) -> Result<(u64, u64)> {
        let file = self.file.as_ref().ok_or(WorkerError::ShuttingDown)?;
        let m = file
            .metadata()
            .map_err(|e| WorkerError::io(format!("arena: stat {}", self.temp.display()), e))?;
        Ok((m.dev(), m.ino()))
    }

    /// Take the file's contents as the object's bytes when someone else (a same-host client)
    /// wrote them: the file must still be this writer's file and hold exactly the announced size.
    /// Reads the whole file once for the CRC-32 (blocking).
    pub fn adopt_file(&mut self) -> Result<()> {
        let file = self.file.as_ref().ok_or(WorkerError::ShuttingDown)?;
        let ctx = |what: &str| format!("arena: {what} {}", self.temp.display());
        let ours = file
            .metadata()
            .map_err(|e| WorkerError::io(ctx("stat"), e))?;
        let named =
            std::fs::symlink_metadata(&self.temp).map_err(|e| WorkerError::io(ctx("stat"), e))?;
        if !named.file_type().is_file() || named.ino() != ours.ino() || named.dev() != ours.dev() {
            return Err(WorkerError::BadRequest(format!(
                "the file of object {} was replaced; write into it, do not rename or recreate it",
                self.id
            )));
        }
        if ours.len() != self.size {
            return Err(WorkerError::SizeMismatch {
                expected: self.size,
                got: ours.len(),
            });
        }
        let mut hasher = crc32fast::Hasher::new();
        if self.size > 0 {
            // SAFETY: read-only view of our own temp file for the duration of this call; a
            // writer changing it meanwhile can only change which CRC is computed, and a
            // mismatch with the sender's CRC refuses the object.
            let map = unsafe { memmap2::MmapOptions::new().populate().map(file) }
                .map_err(|e| WorkerError::io(ctx("mapping"), e))?;
            hasher.update(&map);
        }
        self.hasher = hasher;
        self.written = self.size;
        Ok(())
    }

    /// Append bytes. More bytes than announced is refused with `SizeMismatch`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let got = self.written + data.len() as u64;
        if got > self.size {
            return Err(WorkerError::SizeMismatch {
                expected: self.size,
                got,
            });
        }
        let file = self.file.as_mut().ok_or(WorkerError::ShuttingDown)?;
        file.write_all(data)
            .map_err(|e| WorkerError::io(format!("arena: writing object {}", self.id), e))?;
        self.hasher.update(data);
        self.written = got;
        Ok(())
    }

    /// Check size and (if given) CRC-32, then rename into place and index the object.
    /// If the object already exists, the new copy is dropped and the existing one kept.
    pub fn commit(mut self, expected_crc: Option<u32>) -> Result<StoredMeta> {
        if self.written != self.size {
            return Err(WorkerError::SizeMismatch {
                expected: self.size,
                got: self.written,
            });
        }
        let crc32 = self.hasher.clone().finalize();
        if let Some(expected) = expected_crc
            && expected != crc32
        {
            return Err(WorkerError::CrcMismatch {
                expected,
                got: crc32,
            });
        }
        drop(self.file.take());
        let shared = Arc::clone(&self.reservation.shared);
        let final_path = fsops::object_path(&shared.dir, &self.id);
        let mut ix = shared.lock();
        if ix.entries.contains_key(&self.id) {
            let _ = std::fs::remove_file(&self.temp);
        } else {
            std::fs::rename(&self.temp, &final_path).map_err(|e| {
                let _ = std::fs::remove_file(&self.temp);
                WorkerError::io(format!("arena: renaming object {} into place", self.id), e)
            })?;
        }
        let size = self.size;
        self.reservation.bytes = 0;
        let primary = self.kind == CopyKind::Primary;
        match ix.commit(self.id, size, crc32, primary) {
            Commit::Inserted => Ok(StoredMeta { size, crc32 }),
            Commit::Existing { crc32: existing } if existing == crc32 => {
                Ok(StoredMeta { size, crc32 })
            }
            Commit::Existing { crc32: existing } => Err(WorkerError::CrcMismatch {
                expected: existing,
                got: crc32,
            }),
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
