//! Index unit tests: LRU eviction, pins, the capacity invariant, duplicate commits, and the
//! spill bookkeeping (victim choice, the spill bound, undo when pinned or deleted, restore).

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

#[test]
fn spill_picks_lru_unpinned_primaries_within_the_spill_bound() {
    let mut ix = Index::with_spill(300, 250);
    for n in 1..=3 {
        ix.reserve(100).unwrap();
        ix.commit(id(n), 100, n as u32, true);
    }
    ix.pin(&id(1)); // pinned: never spilled
    assert!(ix.could_make_room(200));
    assert!(!ix.could_make_room(301));
    assert_eq!(ix.start_spill(), Some((id(2), 100)));
    assert_eq!(ix.start_spill(), Some((id(3), 100)));
    assert_eq!(ix.start_spill(), None, "only 50 B of spill space left");
    assert!(ix.finish_spill(&id(2), 100, true));
    assert!(ix.finish_spill(&id(3), 100, true));
    assert_eq!((ix.used, ix.spill.used, ix.free()), (100, 200, 200));
    assert_eq!(
        ix.pinned_bytes(),
        100,
        "spilled primaries hold no arena bytes"
    );
    let u = ix.spill_usage();
    assert_eq!((u.objects, u.spills, u.spilled_bytes), (2, 2, 200));
    ix.reserve(100).unwrap();
    assert!(ix.finish_restore(&id(2), 100));
    assert_eq!((ix.used, ix.reserved, ix.spill.used), (200, 0, 100));
    assert_eq!(ix.entries[&id(2)].pins, 1, "restored pinned for the reader");
    assert_eq!(ix.spill_usage().restores, 1);
    ix.remove(&id(3));
    assert_eq!(ix.spill.used, 0);
}

#[test]
fn a_spill_is_undone_when_the_object_is_pinned_or_deleted_meanwhile() {
    let mut ix = Index::with_spill(200, 1000);
    for n in 1..=2 {
        ix.reserve(100).unwrap();
        ix.commit(id(n), 100, 0, true);
    }
    let (a, _) = ix.start_spill().unwrap();
    ix.pin(&a);
    assert!(!ix.finish_spill(&a, 100, true));
    assert_eq!(ix.entries[&a].place, Place::Arena);
    ix.unpin(&a);
    let (b, _) = ix.start_spill().unwrap();
    assert_ne!(a, b, "the pinned one was used last");
    ix.remove(&b);
    assert!(!ix.finish_spill(&b, 100, true));
    let (c, _) = ix.start_spill().unwrap();
    assert!(!ix.finish_spill(&c, 100, false), "a failed copy is undone");
    assert_eq!((ix.used, ix.spill.used), (100, 0));
}
