//! Writing one object: capacity is reserved first ([`Reservation`]), bytes go straight into a
//! temporary file while the CRC-32 is computed, and `commit` checks size and checksum before the
//! rename makes the object visible. Dropping an uncommitted writer removes the temp file and
//! releases the reservation, so there is never a partial object.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use xnai_proto::ids::ObjectId;

use super::index::Commit;
use super::{CopyKind, Shared, StoredMeta, fsops};
use crate::error::{Result, WorkerError};

/// Bytes reserved in the arena; released on drop unless consumed by a commit.
pub(crate) struct Reservation {
    shared: Arc<Shared>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(shared: Arc<Shared>, bytes: u64) -> Self {
        Self { shared, bytes }
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
        let file = File::create(&temp)
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
