//! Task commands: submit dedup, placement, results, retries and failure cascades.

use super::*;

#[test]
fn submit_is_deduplicated_by_request_id() {
    let mut s = ControlState::default();
    let first = submit(&mut s, "r1", t(1), vec![], TaskOptions::default());
    assert_eq!(
        first,
        Outcome::TaskSubmitted {
            task_id: t(1),
            object_id: t(1).return_object()
        }
    );
    let again = submit(&mut s, "r1", t(2), vec![], TaskOptions::default());
    assert_eq!(again, first);
    assert_eq!(s.tasks.len(), 1);
    assert_eq!(s.unfinished_tasks, 1);
}

#[test]
fn unknown_function_is_rejected_once_workers_offer_some() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 2);
    let spec = TaskSpec {
        function: "nope".into(),
        args: vec![],
        options: TaskOptions::default(),
    };
    let (o, _) = s.apply(Command::SubmitTask {
        request_id: "r".into(),
        task_id: t(1),
        spec,
    });
    let Outcome::Rejected(e) = o else {
        panic!("{o:?}")
    };
    assert_eq!(
        e.to_string(),
        "unknown function \"nope\"; workers offer: echo, fill"
    );
    assert!(s.tasks.is_empty());
}

#[test]
fn assign_finish_frees_resources_and_readies_object() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    submit(&mut s, "r", t(1), vec![], TaskOptions::default());
    let (o, fx) = s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    assert_eq!(o, Outcome::Applied);
    assert_eq!(
        fx,
        vec![Effect::DispatchTask {
            task_id: t(1),
            worker_id: w(1),
            attempt: 1
        }]
    );
    assert_eq!(s.workers[&w(1)].available.milli_cpus, 0);
    // A second task does not fit on the busy worker.
    submit(&mut s, "r2", t(2), vec![], TaskOptions::default());
    let (o, _) = s.apply(Command::AssignTask {
        task_id: t(2),
        worker_id: w(1),
    });
    assert!(o.is_noop());
    let done = Command::TaskFinished {
        task_id: t(1),
        worker_id: w(1),
        attempt: 1,
        size: 5,
        crc32: 9,
    };
    assert_eq!(s.apply(done.clone()).0, Outcome::Applied);
    assert!(s.apply(done).0.is_noop(), "a duplicate result is ignored");
    let obj = &s.objects[&t(1).return_object()];
    assert_eq!((obj.state, obj.size, obj.crc32), (ObjectState::Ready, 5, 9));
    assert!(obj.locations.contains(&w(1)));
    assert_eq!(s.workers[&w(1)].available.milli_cpus, 1000);
    assert_eq!(s.unfinished_tasks, 1);
}

#[test]
fn system_failures_retry_then_fail_listing_causes() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 4);
    let opts = TaskOptions {
        max_retries: 1,
        ..TaskOptions::default()
    };
    submit(&mut s, "r", t(1), vec![], opts);
    for attempt in 1..=2 {
        s.apply(Command::AssignTask {
            task_id: t(1),
            worker_id: w(1),
        });
        let fail = Command::TaskFailed {
            task_id: t(1),
            worker_id: w(1),
            attempt,
            kind: FailureKind::System,
            error: format!("unreachable {attempt}"),
        };
        assert_eq!(s.apply(fail).0, Outcome::Applied);
    }
    let task = &s.tasks[&t(1)];
    assert_eq!(task.state, TaskState::Failed);
    let err = task.error.clone().unwrap_or_default();
    assert!(
        err.contains("after 2 attempt(s)")
            && err.contains("unreachable 1")
            && err.contains("unreachable 2"),
        "{err}"
    );
    assert_eq!(s.objects[&t(1).return_object()].state, ObjectState::Failed);
    assert_eq!(s.workers[&w(1)].available.milli_cpus, 4000);
}

#[test]
fn application_error_fails_at_once_without_retry_exceptions() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    submit(&mut s, "r", t(1), vec![], TaskOptions::default());
    s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    let error = "fill: BYTES must be a non-negative integer, got \"abc\"".to_string();
    let kind = FailureKind::Application;
    s.apply(Command::TaskFailed {
        task_id: t(1),
        worker_id: w(1),
        attempt: 1,
        kind,
        error: error.clone(),
    });
    assert_eq!(
        s.objects[&t(1).return_object()].error.as_ref(),
        Some(&error)
    );
    // With retry_exceptions the same error puts the task back in the queue.
    let opts = TaskOptions {
        retry_exceptions: true,
        ..TaskOptions::default()
    };
    submit(&mut s, "r2", t(2), vec![], opts);
    s.apply(Command::AssignTask {
        task_id: t(2),
        worker_id: w(1),
    });
    s.apply(Command::TaskFailed {
        task_id: t(2),
        worker_id: w(1),
        attempt: 1,
        kind,
        error,
    });
    assert_eq!(s.tasks[&t(2)].state, TaskState::Pending);
}

#[test]
fn failure_cascades_to_dependent_tasks() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    submit(
        &mut s,
        "r1",
        t(1),
        vec![],
        TaskOptions {
            max_retries: 0,
            ..TaskOptions::default()
        },
    );
    let dep = vec![Arg::Ref(t(1).return_object())];
    submit(&mut s, "r2", t(2), dep.clone(), TaskOptions::default());
    submit(
        &mut s,
        "r3",
        t(3),
        vec![Arg::Ref(t(2).return_object())],
        TaskOptions::default(),
    );
    let (o, _) = s.apply(Command::AssignTask {
        task_id: t(2),
        worker_id: w(1),
    });
    assert!(o.is_noop(), "argument not ready yet");
    s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    let kind = FailureKind::Application;
    s.apply(Command::TaskFailed {
        task_id: t(1),
        worker_id: w(1),
        attempt: 1,
        kind,
        error: "boom".into(),
    });
    for id in [t(2), t(3)] {
        assert_eq!(s.tasks[&id].state, TaskState::Failed);
    }
    assert!(
        s.tasks[&t(3)]
            .error
            .clone()
            .unwrap_or_default()
            .contains("failed")
    );
    assert_eq!(s.unfinished_tasks, 0);
    assert!(s.pending_tasks.is_empty());
    // Submitting against a failed object fails the new task at once.
    submit(&mut s, "r4", t(4), dep, TaskOptions::default());
    assert_eq!(s.tasks[&t(4)].state, TaskState::Failed);
    let missing = submit(
        &mut s,
        "r5",
        t(5),
        vec![Arg::Ref(ObjectId(77 << 8))],
        TaskOptions::default(),
    );
    assert!(matches!(
        missing,
        Outcome::Rejected(ApplyError::NoSuchObject(_))
    ));
}

#[test]
fn dedup_memory_is_bounded() {
    let mut s = ControlState::default();
    for i in 0..(REMEMBERED_REQUESTS as u128 + 5) {
        submit(
            &mut s,
            &format!("r{i}"),
            t(i + 1),
            vec![],
            TaskOptions::default(),
        );
    }
    assert!(s.remembered("r0").is_none());
    assert!(
        s.remembered(&format!("r{}", REMEMBERED_REQUESTS + 4))
            .is_some()
    );
}
