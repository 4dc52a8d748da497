//! Fault tolerance in the state machine: a dead worker's outputs are rebuilt from lineage
//! (recursively), a lost put object says why, breakers are logged, a returning process is told
//! to drop what it holds, and session objects are freed when nothing needs them.

use super::*;

#[test]
fn lost_outputs_are_rebuilt_recursively_within_budget() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    register(&mut s, w(2), 4);
    submit(&mut s, "a", t(1), vec![], TaskOptions::default());
    let arg = Arg::Ref(t(1).return_object());
    submit(&mut s, "b", t(2), vec![arg], TaskOptions::default());
    run(&mut s, t(1), w(1));
    run(&mut s, t(2), w(1));
    dead(&mut s, w(1));
    for task in [t(1), t(2)] {
        let o = &s.objects[&task.return_object()];
        assert_eq!(o.state, ObjectState::Pending, "{task} is being rebuilt");
        assert_eq!(s.tasks[&task].state, TaskState::Pending);
    }
    assert_eq!(s.unfinished_tasks, 2);
    run(&mut s, t(1), w(2));
    run(&mut s, t(2), w(2));
    assert_eq!(s.objects[&t(2).return_object()].state, ObjectState::Ready);
    let cause = s.tasks[&t(2)].attempts[0].cause.clone().unwrap_or_default();
    assert!(cause.contains("output lost"), "{cause}");

    // No retries left: the object is lost for good, with the reason.
    let opts = TaskOptions {
        max_retries: 0,
        ..TaskOptions::default()
    };
    submit(&mut s, "c", t(3), vec![], opts);
    run(&mut s, t(3), w(2));
    dead(&mut s, w(2));
    let o = &s.objects[&t(3).return_object()];
    assert_eq!(o.state, ObjectState::Lost);
    let e = o.error.clone().unwrap_or_default();
    assert!(
        e.contains("cannot be rebuilt") && e.contains("attempts"),
        "{e}"
    );
}

#[test]
fn lost_put_object_says_why_and_fails_dependents() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    let put = ObjectId(9 << 8);
    s.apply(Command::AddObjectCopy {
        object_id: put,
        worker_id: w(1),
        size: 5,
        crc32: 2,
        kind: CopyKind::Put,
    });
    // A second task on the only CPU keeps the dependent pending.
    submit(&mut s, "busy", t(1), vec![], TaskOptions::default());
    s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    submit(
        &mut s,
        "dep",
        t(2),
        vec![Arg::Ref(put)],
        TaskOptions::default(),
    );
    dead(&mut s, w(1));
    let o = &s.objects[&put];
    assert_eq!(o.state, ObjectState::Lost);
    let e = o.error.clone().unwrap_or_default();
    assert!(
        e.contains("was put on worker") && e.contains("put objects cannot be rebuilt"),
        "{e}"
    );
    assert_eq!(s.tasks[&t(2)].state, TaskState::Failed);
}

#[test]
fn breaker_blocks_placement_and_returning_process_drops_leftovers() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    let (o, _) = s.apply(Command::SetBreaker {
        worker_id: w(1),
        state: BreakerState::Open,
    });
    assert_eq!(o, Outcome::Applied);
    assert!(!s.placeable(&w(1)) && s.worker_alive(&w(1)));
    s.apply(Command::SetBreaker {
        worker_id: w(1),
        state: BreakerState::Closed,
    });
    assert!(s.placeable(&w(1)));
    submit(&mut s, "a", t(1), vec![], TaskOptions::default());
    run(&mut s, t(1), w(1));
    dead(&mut s, w(1));
    // The same process (same address and pid) registers again under a new id.
    let (_, fx) = s.apply(Command::RegisterWorker {
        request_id: "again".into(),
        worker_id: w(5),
        address: "127.0.0.1:7001".into(),
        pid: 1,
        resources: Resources::cpus(1),
        arena_capacity: 1 << 30,
        functions: vec!["echo".into()],
        classes: vec![],
    });
    // Sent to the process, fenced to its old id: a worker that dropped its old objects itself
    // ignores it, so it cannot remove a rebuild placed on w(5) meanwhile (seed 18).
    assert_eq!(
        fx,
        vec![Effect::DeleteObjects {
            worker_id: w(5),
            meant_for: w(1),
            object_ids: vec![t(1).return_object()],
        }]
    );
}

#[test]
fn session_objects_are_freed_when_nothing_needs_them() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    let sid = SessionId(3 << 8);
    let (o, _) = s.apply(Command::OpenSession {
        request_id: "s".into(),
        session_id: sid,
        lease_ms: 1000,
    });
    assert_eq!(o, Outcome::SessionOpened { session_id: sid });
    let opts = TaskOptions {
        session: Some(sid),
        ..TaskOptions::default()
    };
    submit(&mut s, "a", t(1), vec![], opts.clone());
    let a_out = t(1).return_object();
    submit(&mut s, "b", t(2), vec![Arg::Ref(a_out)], opts.clone());
    run(&mut s, t(1), w(1));
    // Released but still the input of a pending task: kept.
    let (_, fx) = s.apply(Command::ReleaseObjects {
        session_id: Some(sid),
        object_ids: vec![a_out],
    });
    assert!(fx.is_empty());
    assert_eq!(s.objects[&a_out].state, ObjectState::Ready);
    // Its dependent finished and is still held: kept for lineage.
    run(&mut s, t(2), w(1));
    assert_eq!(s.objects[&a_out].state, ObjectState::Ready);
    // The session ends: both are freed, and the worker is asked to delete them.
    let (_, fx) = s.apply(Command::CloseSession {
        session_id: sid,
        reason: "lease expired".into(),
    });
    assert_eq!(s.object_state(&a_out), Some(ObjectState::Freed));
    assert_eq!(
        s.object_state(&t(2).return_object()),
        Some(ObjectState::Freed)
    );
    let Some(Effect::DeleteObjects { object_ids, .. }) = fx.first() else {
        panic!("no delete: {fx:?}");
    };
    assert_eq!(object_ids.len(), 2);
    // A closed session cannot submit.
    let o = submit(&mut s, "c", t(3), vec![], opts);
    assert!(
        matches!(o, Outcome::Rejected(ApplyError::NoSuchSession(_))),
        "{o:?}"
    );
}

#[test]
fn argument_misses_do_not_spend_retries_until_their_cap() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    register(&mut s, w(2), 4);
    submit(&mut s, "a", t(1), vec![], TaskOptions::default());
    run(&mut s, t(1), w(1));
    let opts = TaskOptions {
        max_retries: 1,
        ..TaskOptions::default()
    };
    let arg = Arg::Ref(t(1).return_object());
    submit(&mut s, "b", t(2), vec![arg], opts);
    let miss = |s: &mut ControlState| {
        s.apply(Command::AssignTask {
            task_id: t(2),
            worker_id: w(2),
        });
        let attempt = s.tasks[&t(2)].attempts.len() as u32;
        s.apply(Command::TaskFailed {
            task_id: t(2),
            worker_id: w(2),
            attempt,
            kind: FailureKind::ArgumentUnavailable,
            error: "cannot get argument object: w1: connection refused".into(),
        })
        .0
    };
    // MAX_ARGUMENT_MISSES free retries, although max_retries is 1.
    for n in 1..=MAX_ARGUMENT_MISSES {
        assert_eq!(miss(&mut s), Outcome::Applied);
        let task = &s.tasks[&t(2)];
        assert_eq!(task.state, TaskState::Pending, "after miss {n}");
        assert_eq!((task.charged_attempts(), task.argument_misses()), (0, n));
    }
    // Then misses count like system errors: one retry (max_retries 1), then failure.
    miss(&mut s);
    assert_eq!(s.tasks[&t(2)].state, TaskState::Pending);
    assert_eq!(s.tasks[&t(2)].charged_attempts(), 1);
    miss(&mut s);
    let task = &s.tasks[&t(2)];
    assert_eq!(task.state, TaskState::Failed);
    let e = task.error.clone().unwrap_or_default();
    assert!(
        e.contains("after 2 attempt(s)")
            && e.contains(&format!("{MAX_ARGUMENT_MISSES} uncounted"))
            && e.contains("connection refused"),
        "{e}"
    );
    // The lineage budget counts charged attempts only: t(1) is untouched and rebuildable.
    assert_eq!(s.tasks[&t(1)].charged_attempts(), 1);
}
