//! Arena unit tests on a temporary directory (under /dev/shm when it exists, so the tmpfs path
//! is exercised): round trips, checksums, capacity, eviction order, pins and error texts.

use super::*;

fn temp_root() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.exists() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn open(root: &tempfile::TempDir, capacity: u64) -> (Arena, EvictionReceiver) {
    let dir = root.path().join("arena");
    Arena::open(ArenaConfig {
        dir: Some(dir),
        capacity,
        spill: None,
    })
    .unwrap()
}

fn oid(n: u128) -> ObjectId {
    ObjectId(n << 8)
}

#[test]
fn put_get_round_trip_is_checksummed() {
    let root = temp_root();
    let (arena, _ev) = open(&root, 1 << 20);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let meta = arena.store(oid(1), &data, CopyKind::Primary).unwrap();
    assert_eq!(
        meta,
        StoredMeta {
            size: data.len() as u64,
            crc32: crc32fast::hash(&data)
        }
    );
    let h = arena.get(&oid(1)).unwrap();
    assert_eq!(&h.bytes()[..], &data[..]);
    assert_eq!(arena.usage().used, data.len() as u64);
    assert!(arena.dir().join(oid(1).hex()).exists());
    let empty = arena.store(oid(2), b"", CopyKind::Primary).unwrap();
    assert_eq!(empty.size, 0);
    assert!(arena.get(&oid(2)).unwrap().bytes().is_empty());
}

#[test]
fn crc_or_size_mismatch_is_refused_and_leaves_nothing() {
    let root = temp_root();
    let (arena, _ev) = open(&root, 1000);
    let mut w = arena.writer(oid(1), 4, CopyKind::Primary).unwrap();
    w.write(b"abcd").unwrap();
    let err = w.commit(Some(1)).unwrap_err();
    assert!(
        matches!(err, WorkerError::CrcMismatch { expected: 1, .. }),
        "{err}"
    );
    let mut w = arena.writer(oid(2), 4, CopyKind::Primary).unwrap();
    assert!(matches!(
        w.write(b"abcde"),
        Err(WorkerError::SizeMismatch {
            expected: 4,
            got: 5
        })
    ));
    drop(w);
    let mut w = arena.writer(oid(3), 4, CopyKind::Primary).unwrap();
    w.write(b"ab").unwrap();
    assert!(matches!(
        w.commit(None),
        Err(WorkerError::SizeMismatch {
            expected: 4,
            got: 2
        })
    ));
    assert_eq!(
        arena.usage(),
        ArenaUsage {
            used: 0,
            reserved: 0,
            capacity: 1000,
            objects: 0
        }
    );
    assert_eq!(
        std::fs::read_dir(arena.dir()).unwrap().count(),
        0,
        "no partial files"
    );
    assert!(matches!(
        arena.get(&oid(1)),
        Err(WorkerError::ObjectNotFound(_))
    ));
}

#[test]
fn capacity_is_never_exceeded_and_full_says_why() {
    let root = temp_root();
    let (arena, _ev) = open(&root, 1000);
    arena.store(oid(1), &[1; 600], CopyKind::Primary).unwrap();
    let w = arena.writer(oid(2), 300, CopyKind::Primary).unwrap();
    let err = arena.writer(oid(3), 200, CopyKind::Primary).err().unwrap();
    assert_eq!(
        err.to_string(),
        "arena full: need 200 B, free 100 B of 1000 B (600 B pinned)"
    );
    drop(w);
    assert_eq!(arena.usage().reserved, 0, "reservation released on drop");
    arena.writer(oid(3), 400, CopyKind::Primary).unwrap();
}

#[test]
fn evicts_pulled_copies_lru_and_reports_them() {
    let root = temp_root();
    let (arena, mut ev) = open(&root, 300);
    for n in 1..=3 {
        arena
            .store(oid(n), &[n as u8; 100], CopyKind::Pulled)
            .unwrap();
    }
    drop(arena.get(&oid(1)).unwrap()); // 1 becomes most recently used
    arena.store(oid(4), &[4; 150], CopyKind::Primary).unwrap();
    assert_eq!(ev.try_recv().unwrap(), vec![oid(2), oid(3)]);
    assert!(arena.contains(&oid(1)));
    assert!(!arena.dir().join(oid(2).hex()).exists());
    assert!(arena.usage().used <= 300);
}

#[test]
fn pinned_objects_are_never_evicted() {
    let root = temp_root();
    let (arena, _ev) = open(&root, 200);
    arena.store(oid(1), &[1; 100], CopyKind::Pulled).unwrap();
    arena.store(oid(2), &[2; 100], CopyKind::Primary).unwrap();
    let reading = arena.get(&oid(1)).unwrap();
    let err = arena.writer(oid(3), 50, CopyKind::Pulled).err().unwrap();
    assert!(
        matches!(err, WorkerError::ArenaFull { pinned: 200, .. }),
        "{err}"
    );
    assert_eq!(&reading.bytes()[..3], &[1, 1, 1]);
    drop(reading);
    arena.writer(oid(3), 50, CopyKind::Pulled).unwrap();
    assert!(!arena.contains(&oid(1)));
}

#[test]
fn delete_and_remove_all_clean_up() {
    let root = temp_root();
    let (arena, _ev) = open(&root, 1000);
    arena.store(oid(1), b"hello", CopyKind::Primary).unwrap();
    assert_eq!(arena.delete(&[oid(1), oid(9)]), vec![oid(1)]);
    assert_eq!(arena.usage().used, 0);
    arena.store(oid(2), b"x", CopyKind::Primary).unwrap();
    arena.remove_all().unwrap();
    assert!(!arena.dir().exists(), "created dir is removed");
}

#[test]
fn refuses_to_start_when_the_mount_is_too_small() {
    let root = temp_root();
    let total = fs_space(root.path()).unwrap().total;
    let dir = root.path().join("arena");
    let err = Arena::open(ArenaConfig {
        dir: Some(dir.clone()),
        capacity: total + (1 << 40),
        spill: None,
    })
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("cannot hold --arena-bytes"), "{msg}");
    assert!(
        msg.starts_with(&format!("arena: {} has", root.path().display())),
        "{msg}"
    );
    assert!(!dir.exists(), "nothing created on refusal");
}
