//! Spill unit tests on temporary directories: LRU spill of primaries when the arena is full,
//! restore on read (into the arena, or from the checked spill file when nothing can move),
//! eviction before spilling, the spill bound, corrupt spill files and the start/stop cleanup.

use super::*;

struct Fixture {
    _root: tempfile::TempDir,
    arena: Arena,
    evictions: EvictionReceiver,
    spill_dir: PathBuf,
}

fn fixture(capacity: u64, spill_capacity: u64) -> Fixture {
    let shm = Path::new("/dev/shm");
    let root = if shm.exists() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let spill_dir = root.path().join("spill");
    let (arena, evictions) = Arena::open(ArenaConfig {
        dir: Some(root.path().join("arena")),
        capacity,
        spill: Some(SpillConfig {
            dir: spill_dir.clone(),
            capacity: spill_capacity,
        }),
    })
    .unwrap();
    Fixture {
        _root: root,
        arena,
        evictions,
        spill_dir,
    }
}

fn oid(n: u128) -> ObjectId {
    ObjectId(n << 8)
}

fn data(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ n).collect()
}

#[test]
fn a_full_arena_of_primaries_spills_lru_and_a_read_restores() {
    let f = fixture(300, 1000);
    for n in 1..=3 {
        f.arena
            .store(oid(n), &data(n as u8, 100), CopyKind::Primary)
            .unwrap();
    }
    drop(f.arena.get(&oid(1)).unwrap()); // 2 is now the least recently used
    f.arena
        .store(oid(4), &data(4, 100), CopyKind::Primary)
        .unwrap();
    assert!(f.arena.is_spilled(&oid(2)));
    assert!(f.spill_dir.join(oid(2).hex()).exists());
    assert!(!f.arena.dir().join(oid(2).hex()).exists());
    assert_eq!(f.arena.usage().used, 300);
    let s = f.arena.spill_usage();
    assert_eq!(
        (s.used, s.objects, s.spills, s.spilled_bytes),
        (100, 1, 1, 100)
    );

    let h = f.arena.get(&oid(2)).unwrap();
    assert_eq!(
        h.bytes().as_ref(),
        &data(2, 100)[..],
        "restored byte for byte"
    );
    assert_eq!(h.meta().crc32, crc32fast::hash(&data(2, 100)));
    assert!(!f.arena.is_spilled(&oid(2)));
    assert!(
        f.arena.is_spilled(&oid(3)),
        "3 made room: it was used least recently"
    );
    assert!(!f.spill_dir.join(oid(2).hex()).exists());
    let s = f.arena.spill_usage();
    assert_eq!((s.used, s.objects, s.spills, s.restores), (100, 1, 2, 1));
    assert!(f.arena.usage().used <= 300);
    for n in [1, 3, 4] {
        assert_eq!(
            f.arena.get(&oid(n)).unwrap().bytes().as_ref(),
            &data(n as u8, 100)[..]
        );
    }
}

#[test]
fn pulled_copies_are_evicted_before_any_primary_spills() {
    let mut f = fixture(300, 1000);
    f.arena
        .store(oid(1), &data(1, 100), CopyKind::Pulled)
        .unwrap();
    f.arena
        .store(oid(2), &data(2, 100), CopyKind::Primary)
        .unwrap();
    f.arena
        .store(oid(3), &data(3, 100), CopyKind::Primary)
        .unwrap();
    f.arena
        .store(oid(4), &data(4, 100), CopyKind::Primary)
        .unwrap();
    assert_eq!(f.evictions.try_recv().unwrap(), vec![oid(1)]);
    assert_eq!(f.arena.spill_usage().spills, 0);
}

#[test]
fn when_the_spill_space_is_full_too_a_write_is_refused_saying_so() {
    let f = fixture(200, 100);
    for n in 1..=3 {
        f.arena
            .store(oid(n), &data(n as u8, 100), CopyKind::Primary)
            .unwrap();
    }
    let err = f
        .arena
        .store(oid(4), &data(4, 100), CopyKind::Primary)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "arena full: need 100 B, free 0 B of 200 B (200 B pinned); spill directory: 0 B free of 100 B"
    );
    assert_eq!(
        tonic::Status::from(err).code(),
        tonic::Code::ResourceExhausted
    );
    let too_big = f
        .arena
        .writer(oid(5), 201, CopyKind::Primary)
        .err()
        .unwrap();
    assert!(matches!(
        too_big,
        WorkerError::ArenaAndSpillFull { need: 201, .. }
    ));
    assert_eq!(
        f.arena.spill_usage().spills,
        1,
        "nothing spilled for a hopeless write"
    );
    let u = f.arena.usage();
    assert_eq!((u.used, u.reserved), (200, 0));
}

#[test]
fn with_no_room_to_restore_the_checked_spill_file_is_served() {
    let f = fixture(200, 1000);
    for n in 1..=3 {
        f.arena
            .store(oid(n), &data(n as u8, 100), CopyKind::Primary)
            .unwrap();
    }
    assert!(f.arena.is_spilled(&oid(1)));
    let pins = [f.arena.get(&oid(2)).unwrap(), f.arena.get(&oid(3)).unwrap()];
    let h = f.arena.get(&oid(1)).unwrap();
    assert_eq!(h.bytes().as_ref(), &data(1, 100)[..]);
    assert!(f.arena.is_spilled(&oid(1)), "still on disk");
    let file = f.arena.file_of(&oid(1)).unwrap();
    assert_eq!(
        file.path,
        f.spill_dir.join(oid(1).hex()),
        "the spill file is named"
    );
    assert_eq!(std::fs::read(&file.path).unwrap(), data(1, 100));
    drop((h, pins));
    let file = f.arena.file_of(&oid(1)).unwrap();
    assert_eq!(
        file.path,
        f.arena.dir().join(oid(1).hex()),
        "restored for a local map"
    );
    assert_eq!(std::fs::read(&file.path).unwrap(), data(1, 100));
    assert_eq!(f.arena.spill_usage().restores, 3);
}

#[test]
fn a_corrupt_spill_file_is_detected_dropped_and_reported_never_served() {
    for room in [true, false] {
        let mut f = fixture(200, 1000);
        for n in 1..=3 {
            f.arena
                .store(oid(n), &data(n as u8, 100), CopyKind::Primary)
                .unwrap();
        }
        let spilled = f.spill_dir.join(oid(1).hex());
        let mut bytes = std::fs::read(&spilled).unwrap();
        bytes[50] ^= 0xff;
        std::fs::write(&spilled, &bytes).unwrap();
        let pins = (!room).then(|| [f.arena.get(&oid(2)).unwrap(), f.arena.get(&oid(3)).unwrap()]);
        let err = f.arena.get(&oid(1)).err().unwrap();
        assert!(
            matches!(err, WorkerError::SpillCorrupt { object, expected, .. }
                if object == oid(1) && expected == crc32fast::hash(&data(1, 100))),
            "room {room}: {err}"
        );
        assert!(err.to_string().contains("spill file is corrupt"), "{err}");
        assert!(!f.arena.contains(&oid(1)), "the copy is dropped");
        assert!(!spilled.exists());
        assert_eq!(
            f.evictions.try_recv().unwrap(),
            vec![oid(1)],
            "reported removed"
        );
        drop(pins);
        let (u, s) = (f.arena.usage(), f.arena.spill_usage());
        assert_eq!((u.reserved, u.objects), (0, 2), "room {room}");
        assert_eq!(
            u.used + s.used,
            200,
            "2 and 3 are kept, in the arena or on disk"
        );
    }
}

#[test]
fn delete_and_restart_clear_spill_files() {
    let f = fixture(100, 1000);
    f.arena
        .store(oid(1), &data(1, 100), CopyKind::Primary)
        .unwrap();
    f.arena
        .store(oid(2), &data(2, 100), CopyKind::Primary)
        .unwrap();
    assert!(f.spill_dir.join(oid(1).hex()).exists());
    assert_eq!(f.arena.delete(&[oid(1)]), vec![oid(1)]);
    assert!(!f.spill_dir.join(oid(1).hex()).exists());
    assert_eq!(f.arena.spill_usage().used, 0);

    // A spill directory left by an earlier run: its files are removed at start.
    f.arena
        .store(oid(3), &data(3, 100), CopyKind::Primary)
        .unwrap();
    assert!(f.spill_dir.join(oid(2).hex()).exists());
    let (again, _ev) = Arena::open(ArenaConfig {
        dir: Some(f._root.path().join("arena2")),
        capacity: 100,
        spill: Some(SpillConfig {
            dir: f.spill_dir.clone(),
            capacity: 1000,
        }),
    })
    .unwrap();
    assert_eq!(std::fs::read_dir(&f.spill_dir).unwrap().count(), 0);
    again.remove_all().unwrap();
    assert!(
        f.spill_dir.exists(),
        "a directory it did not create is kept"
    );
    f.arena.remove_all().unwrap();
    assert!(!f.spill_dir.exists(), "the directory it created is removed");
}
