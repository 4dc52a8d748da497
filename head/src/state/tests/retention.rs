//! Bounded state: what leaves the control state and when. A finished task's record leaves with
//! its output (keeping a summary), lineage of live objects stays however long ago it finished,
//! and history, tombstones, dead workers and dead actors are bounded; inline arguments count
//! against a budget.

use super::*;

fn session(s: &mut ControlState, n: u128) -> (SessionId, TaskOptions) {
    let sid = SessionId(n << 8);
    s.apply(Command::OpenSession {
        request_id: format!("s{n}"),
        session_id: sid,
        lease_ms: 1000,
    });
    let opts = TaskOptions {
        session: Some(sid),
        ..TaskOptions::default()
    };
    (sid, opts)
}

fn release(s: &mut ControlState, sid: SessionId, ids: Vec<ObjectId>) -> Vec<Effect> {
    s.apply(Command::ReleaseObjects {
        session_id: Some(sid),
        object_ids: ids,
    })
    .1
}

fn kib() -> Vec<Arg> {
    vec![Arg::Inline(vec![7; 1024])]
}

#[test]
fn a_released_result_takes_its_task_out_and_leaves_a_summary() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    let (sid, opts) = session(&mut s, 1);
    submit(&mut s, "a", t(1), kib(), opts);
    assert_eq!(s.inline_bytes, 1024);
    run(&mut s, t(1), w(1));
    let out = t(1).return_object();
    let fx = release(&mut s, sid, vec![out]);
    assert_eq!(
        fx,
        vec![Effect::DeleteObjects {
            worker_id: w(1),
            meant_for: w(1),
            object_ids: vec![out]
        }]
    );
    assert!(s.tasks.is_empty() && s.objects.is_empty(), "{s:?}");
    assert!(s.arg_index.is_empty());
    assert_eq!(s.inline_bytes, 0);
    assert_eq!(s.object_state(&out), Some(ObjectState::Freed));
    let summary = s.history.back().cloned();
    assert_eq!(
        summary,
        Some(TaskSummary {
            task_id: t(1),
            function: "echo".into(),
            state: TaskState::Finished,
            attempts: 1,
            error: None,
        })
    );
    // A late release or a pulled copy of the freed object changes nothing.
    assert!(release(&mut s, sid, vec![out]).is_empty());
    let (o, _) = s.apply(Command::AddObjectCopy {
        object_id: out,
        worker_id: w(1),
        size: 10,
        crc32: 1,
        kind: CopyKind::Pulled,
    });
    assert!(o.is_noop(), "{o:?}");
    assert!(s.objects.is_empty());
}

#[test]
fn a_failed_task_leaves_once_its_failed_object_is_released() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    let (sid, opts) = session(&mut s, 1);
    submit(&mut s, "a", t(1), vec![], opts);
    s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    s.apply(Command::TaskFailed {
        task_id: t(1),
        worker_id: w(1),
        attempt: 1,
        kind: FailureKind::Application,
        error: "x".repeat(1000),
    });
    assert_eq!(s.tasks[&t(1)].state, TaskState::Failed, "held: kept");
    release(&mut s, sid, vec![t(1).return_object()]);
    assert!(s.tasks.is_empty() && s.objects.is_empty());
    let summary = s
        .history
        .back()
        .cloned()
        .unwrap_or_else(|| panic!("no summary"));
    assert_eq!(summary.state, TaskState::Failed);
    assert_eq!(summary.error.map(|e| e.len()), Some(SUMMARY_ERROR_BYTES));
}

#[test]
fn lineage_of_a_live_object_survives_long_history_and_rebuilds() {
    let limits = Limits {
        finished_tasks: 5,
        freed_objects: 5,
        ..Limits::default()
    };
    let mut s = ControlState::with_limits(limits);
    register(&mut s, w(1), 4);
    register(&mut s, w(2), 4);
    let (sid, opts) = session(&mut s, 1);
    // t1 -> x1 -> t2 -> x2; x1 is released at once, x2 is held.
    submit(&mut s, "a", t(1), kib(), opts.clone());
    let x1 = t(1).return_object();
    submit(&mut s, "b", t(2), vec![Arg::Ref(x1)], opts.clone());
    run(&mut s, t(1), w(1));
    run(&mut s, t(2), w(1));
    release(&mut s, sid, vec![x1]);
    assert_eq!(s.objects[&x1].state, ObjectState::Ready, "lineage of x2");
    // Long afterwards: a thousand other tasks come and go; the rings stay at their limits.
    for i in 0..1000u128 {
        let id = t(100 + i);
        submit(&mut s, &format!("n{i}"), id, kib(), opts.clone());
        run(&mut s, id, w(2));
        release(&mut s, sid, vec![id.return_object()]);
    }
    assert_eq!((s.history.len(), s.freed.len()), (5, 5));
    assert_eq!(s.tasks.len(), 2, "only x2's lineage is kept");
    assert_eq!(s.inline_bytes, 1024);
    // Worker 1 dies with both copies: x2 is rebuilt through t1 and t2.
    dead(&mut s, w(1));
    assert_eq!(s.tasks[&t(1)].state, TaskState::Pending);
    assert_eq!(s.tasks[&t(2)].state, TaskState::Pending);
    run(&mut s, t(1), w(2));
    run(&mut s, t(2), w(2));
    let x2 = t(2).return_object();
    assert_eq!(s.objects[&x2].state, ObjectState::Ready);
    // Released at last: the whole chain leaves.
    release(&mut s, sid, vec![x2]);
    assert!(s.tasks.is_empty() && s.objects.is_empty(), "{:?}", s.tasks);
    assert!(s.arg_index.is_empty());
    assert_eq!(s.inline_bytes, 0);
}

#[test]
fn a_put_of_a_recently_freed_id_is_refused() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    let put = ObjectId(9 << 8);
    let copy = |s: &mut ControlState| {
        s.apply(Command::AddObjectCopy {
            object_id: put,
            worker_id: w(1),
            size: 5,
            crc32: 2,
            kind: CopyKind::Put,
        })
        .0
    };
    assert_eq!(copy(&mut s), Outcome::Applied);
    s.apply(Command::ReleaseObjects {
        session_id: None,
        object_ids: vec![put],
    });
    assert!(s.objects.is_empty());
    assert!(matches!(
        copy(&mut s),
        Outcome::Rejected(ApplyError::Conflict(_))
    ));
    // Submitting with it fails the task at once, saying the argument was freed.
    submit(
        &mut s,
        "a",
        t(1),
        vec![Arg::Ref(put)],
        TaskOptions::default(),
    );
    let e = s.tasks[&t(1)].error.clone().unwrap_or_default();
    assert!(e.contains("freed"), "{e}");
}

#[test]
fn dead_workers_and_dead_actors_are_bounded() {
    let limits = Limits {
        dead_workers: 2,
        dead_actors: 1,
        ..Limits::default()
    };
    let mut s = ControlState::with_limits(limits);
    for n in 1..=4 {
        register(&mut s, w(n), 1);
    }
    for n in 1..=3 {
        dead(&mut s, w(n));
    }
    let kept: Vec<WorkerId> = s.workers.keys().copied().collect();
    assert_eq!(kept, vec![w(2), w(3), w(4)], "the oldest dead worker left");
    for n in 1..=3 {
        let spec = ActorSpec {
            class: "counter".into(),
            args: kib(),
            options: ActorOptions::default(),
        };
        s.apply(Command::CreateActor {
            request_id: format!("c{n}"),
            actor_id: a(n),
            spec,
        });
        s.apply(Command::KillActor {
            request_id: format!("k{n}"),
            actor_id: a(n),
        });
    }
    let kept: Vec<ActorId> = s.actors.keys().copied().collect();
    assert_eq!(kept, vec![a(3)]);
    assert_eq!(
        s.inline_bytes, 1024,
        "the dropped actors' arguments are no longer held"
    );
}

#[test]
fn inline_arguments_count_against_the_budget() {
    let limits = Limits {
        inline_arg_bytes: 2048,
        ..Limits::default()
    };
    let mut s = ControlState::with_limits(limits);
    register(&mut s, w(1), 4);
    let (sid, opts) = session(&mut s, 1);
    submit(&mut s, "a", t(1), kib(), opts.clone());
    submit(&mut s, "b", t(2), kib(), opts.clone());
    let refused = submit(&mut s, "c", t(3), kib(), opts.clone());
    assert_eq!(
        refused,
        Outcome::Rejected(ApplyError::InlineBudget {
            need: 1024,
            used: 2048,
            budget: 2048
        })
    );
    assert!(!s.tasks.contains_key(&t(3)) && s.remembered("c").is_none());
    // Tasks without inline arguments still go through.
    let by_ref = submit(&mut s, "d", t(4), vec![], opts.clone());
    assert!(
        matches!(by_ref, Outcome::TaskSubmitted { .. }),
        "{by_ref:?}"
    );
    // Once a result is released the retry (same request id) is accepted.
    run(&mut s, t(1), w(1));
    release(&mut s, sid, vec![t(1).return_object()]);
    let retried = submit(&mut s, "c", t(3), kib(), opts);
    assert!(
        matches!(retried, Outcome::TaskSubmitted { .. }),
        "{retried:?}"
    );
}

#[test]
fn size_counts_entries_and_bytes() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    let (sid, opts) = session(&mut s, 1);
    let empty = s.size();
    assert_eq!(empty.entries(), 2, "one worker, one session");
    submit(&mut s, "a", t(1), kib(), opts);
    let one = s.size();
    assert_eq!((one.tasks, one.objects, one.inline_arg_bytes), (1, 1, 1024));
    assert!(one.approx_bytes > empty.approx_bytes + 1024, "{one:?}");
    run(&mut s, t(1), w(1));
    release(&mut s, sid, vec![t(1).return_object()]);
    let after = s.size();
    assert_eq!(after.entries(), empty.entries());
    assert_eq!((after.history, after.tombstones), (1, 1));
}
