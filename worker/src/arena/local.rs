//! Same-host puts, the plasma-style path: a client on this machine is handed a reserved arena
//! file, writes the object into it itself (one copy, no gRPC framing) and seals it. This is the
//! one owner of open local puts: a short mutex over a ticket table. An open put holds its
//! capacity reservation through its [`ObjectWriter`]; a seal adopts and checksums the file, and
//! an abort or an expired lease drops the writer (file removed, capacity released). The number of
//! open puts is capped so a client cannot pin the arena with reservations.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xnai_proto::ids::ObjectId;

use super::{Arena, CopyKind, ObjectWriter, StoredMeta};
use crate::error::{Result, WorkerError};

/// A put that was opened: what the client needs to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPut {
    /// Names the put in seal and abort.
    pub ticket: u64,
    /// The object's id once sealed.
    pub id: ObjectId,
    /// The reserved file to write into.
    pub path: PathBuf,
    /// `st_dev` of that file.
    pub device: u64,
    /// `st_ino` of that file.
    pub inode: u64,
    /// How long the put stays open without a seal.
    pub lease: Duration,
}

struct Open {
    writer: ObjectWriter,
    expires: Instant,
}

/// The open same-host puts of one arena.
pub struct LocalPuts {
    arena: Arena,
    open: Mutex<HashMap<u64, Open>>,
    lease: Duration,
    max_open: usize,
}

impl LocalPuts {
    /// Puts into `arena`, each open at most `lease` without a seal, at most `max_open` at once.
    pub fn new(arena: Arena, lease: Duration, max_open: usize) -> Self {
        Self {
            arena,
            open: Mutex::new(HashMap::new()),
            lease,
            max_open,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserve `size` bytes (evicting like any write) and create the file for a new object.
    pub fn create(&self, size: u64) -> Result<CreatedPut> {
        if size == 0 {
            return Err(WorkerError::BadRequest(
                "CreateLocalPut: size must be at least 1 byte (put an empty object with PutObject)"
                    .into(),
            ));
        }
        self.expire(Instant::now());
        let mut open = self.lock();
        if open.len() >= self.max_open {
            return Err(WorkerError::LocalPutsFull {
                open: self.max_open,
            });
        }
        let id = ObjectId::random();
        let writer = self.arena.writer(id, size, CopyKind::Primary)?;
        let (device, inode) = writer.file_identity()?;
        let path = writer.temp_path().to_path_buf();
        let mut ticket = rand::random::<u64>();
        while open.contains_key(&ticket) {
            ticket = rand::random();
        }
        open.insert(
            ticket,
            Open {
                writer,
                expires: Instant::now() + self.lease,
            },
        );
        tracing::debug!(ticket, object_id = %id, size, "local put opened");
        Ok(CreatedPut {
            ticket,
            id,
            path,
            device,
            inode,
            lease: self.lease,
        })
    }

    /// Check the written file (size, identity, CRC-32 against `crc32`) and make the object
    /// visible. Any failure drops the put. Blocking: reads the whole file once.
    pub fn seal(&self, ticket: u64, crc32: u32) -> Result<(ObjectId, StoredMeta)> {
        self.expire(Instant::now());
        let open = self
            .lock()
            .remove(&ticket)
            .ok_or(WorkerError::NoLocalPut(ticket))?;
        let mut writer = open.writer;
        let id = writer.id();
        writer.adopt_file()?;
        let meta = writer.commit(Some(crc32))?;
        Ok((id, meta))
    }

    /// Drop an open put now; whether it was open.
    pub fn abort(&self, ticket: u64) -> bool {
        let gone = self.lock().remove(&ticket);
        gone.is_some()
    }

    /// Drop every put whose lease ended before `now`; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let expired: Vec<Open> = {
            let mut open = self.lock();
            let dead: Vec<u64> = open
                .iter()
                .filter(|(_, o)| o.expires <= now)
                .map(|(t, _)| *t)
                .collect();
            dead.iter().filter_map(|t| open.remove(t)).collect()
        };
        for o in &expired {
            tracing::warn!(object_id = %o.writer.id(), "local put expired unsealed; dropped");
        }
        expired.len()
    }

    /// How many puts are open.
    pub fn open_count(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::arena::ArenaConfig;

    fn arena(root: &tempfile::TempDir, capacity: u64) -> Arena {
        let (arena, _ev) = Arena::open(ArenaConfig {
            dir: Some(root.path().join("arena")),
            capacity,
            spill: None,
        })
        .unwrap();
        arena
    }

    fn root() -> tempfile::TempDir {
        let shm = std::path::Path::new("/dev/shm");
        if shm.exists() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        }
    }

    /// What a same-host client does: open the given file, check it, write at offset 0.
    fn client_write(put: &CreatedPut, data: &[u8]) {
        use std::os::unix::fs::MetadataExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&put.path)
            .unwrap();
        let m = f.metadata().unwrap();
        assert_eq!((m.dev(), m.ino()), (put.device, put.inode));
        f.write_all_at(data, 0).unwrap();
    }

    #[test]
    fn a_sealed_put_is_a_checksummed_object_and_its_file_can_be_found() {
        let root = root();
        let arena = arena(&root, 1 << 20);
        let puts = LocalPuts::new(arena.clone(), Duration::from_secs(60), 4);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let put = puts.create(data.len() as u64).unwrap();
        assert!(put.path.is_absolute());
        assert_eq!(arena.usage().reserved, data.len() as u64);
        assert!(!arena.contains(&put.id), "not visible before the seal");
        client_write(&put, &data);
        let (id, meta) = puts.seal(put.ticket, crc32fast::hash(&data)).unwrap();
        assert_eq!(id, put.id);
        assert_eq!(meta.size, data.len() as u64);
        assert_eq!(arena.get(&id).unwrap().bytes().as_ref(), &data[..]);
        let usage = arena.usage();
        assert_eq!((usage.used, usage.reserved), (data.len() as u64, 0));
        assert_eq!(puts.open_count(), 0);

        let file = arena.file_of(&id).unwrap();
        assert_eq!(file.meta, meta);
        assert_eq!(std::fs::read(&file.path).unwrap(), data);
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&file.path).unwrap();
            assert_eq!((m.dev(), m.ino()), (file.device, file.inode));
        }
        assert!(matches!(
            arena.file_of(&ObjectId(7 << 8)),
            Err(WorkerError::ObjectNotFound(_))
        ));
        assert!(matches!(
            puts.seal(put.ticket, 0),
            Err(WorkerError::NoLocalPut(_))
        ));
    }

    #[test]
    fn a_bad_checksum_or_size_drops_the_put_and_its_reservation() {
        let root = root();
        let arena = arena(&root, 1 << 20);
        let puts = LocalPuts::new(arena.clone(), Duration::from_secs(60), 4);
        let put = puts.create(1000).unwrap();
        client_write(&put, &[7u8; 1000]);
        let err = puts.seal(put.ticket, 1).unwrap_err();
        assert!(matches!(err, WorkerError::CrcMismatch { .. }), "{err}");
        assert!(!put.path.exists());
        assert!(!arena.contains(&put.id));

        let short = puts.create(1000).unwrap();
        client_write(&short, &[7u8; 999]);
        let err = puts
            .seal(short.ticket, crc32fast::hash(&[7u8; 999]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                WorkerError::SizeMismatch {
                    expected: 1000,
                    got: 999
                }
            ),
            "{err}"
        );
        let usage = arena.usage();
        assert_eq!((usage.used, usage.reserved, usage.objects), (0, 0, 0));
    }

    #[test]
    fn a_replaced_file_is_refused() {
        let root = root();
        let arena = arena(&root, 1 << 20);
        let puts = LocalPuts::new(arena.clone(), Duration::from_secs(60), 4);
        let put = puts.create(3).unwrap();
        let other = root.path().join("other");
        std::fs::write(&other, b"abc").unwrap();
        std::fs::rename(&other, &put.path).unwrap();
        let err = puts.seal(put.ticket, crc32fast::hash(b"abc")).unwrap_err();
        assert!(err.to_string().contains("was replaced"), "{err}");
        assert!(!arena.contains(&put.id));
        assert_eq!(arena.usage().reserved, 0);
    }

    #[test]
    fn limits_capacity_open_count_and_lease_are_enforced() {
        let root = root();
        let arena = arena(&root, 10_000);
        let puts = LocalPuts::new(arena.clone(), Duration::from_secs(60), 2);
        let err = puts.create(20_000).unwrap_err();
        assert!(matches!(err, WorkerError::ArenaFull { .. }), "{err}");
        assert!(matches!(puts.create(0), Err(WorkerError::BadRequest(_))));

        let a = puts.create(100).unwrap();
        let _b = puts.create(100).unwrap();
        let err = puts.create(100).unwrap_err();
        assert!(
            matches!(err, WorkerError::LocalPutsFull { open: 2 }),
            "{err}"
        );
        assert!(puts.abort(a.ticket));
        assert!(!puts.abort(a.ticket));
        assert!(!a.path.exists());
        let _c = puts.create(100).unwrap();
        assert_eq!(arena.usage().reserved, 200);

        assert_eq!(puts.expire(Instant::now() + Duration::from_secs(61)), 2);
        assert_eq!(puts.open_count(), 0);
        assert_eq!(arena.usage().reserved, 0);

        let short = LocalPuts::new(arena.clone(), Duration::ZERO, 2);
        let put = short.create(10).unwrap();
        client_write(&put, &[1u8; 10]);
        assert!(matches!(
            short.seal(put.ticket, crc32fast::hash(&[1u8; 10])),
            Err(WorkerError::NoLocalPut(_))
        ));
        assert_eq!(arena.usage().reserved, 0);
    }
}
