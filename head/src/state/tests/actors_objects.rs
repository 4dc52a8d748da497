//! Actor and object commands: names, restarts, kills, copies and loss.

use super::*;

#[test]
fn actor_names_are_unique_and_freed_by_kill() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options: ActorOptions {
            name: Some("c".into()),
            ..ActorOptions::default()
        },
    };
    let create = |rid: &str, id| Command::CreateActor {
        request_id: rid.into(),
        actor_id: id,
        spec: spec.clone(),
    };
    assert_eq!(
        s.apply(create("c1", a(1))).0,
        Outcome::ActorCreated { actor_id: a(1) }
    );
    let taken = s.apply(create("c2", a(2))).0;
    assert_eq!(taken, Outcome::Rejected(ApplyError::NameTaken("c".into())));
    let (_, fx) = s.apply(Command::PlaceActor {
        actor_id: a(1),
        worker_id: w(1),
    });
    assert_eq!(
        fx,
        vec![Effect::StartActor {
            actor_id: a(1),
            worker_id: w(1)
        }]
    );
    s.apply(Command::ActorAlive {
        actor_id: a(1),
        worker_id: w(1),
    });
    assert_eq!(s.actors[&a(1)].state, ActorState::Alive);
    let (o, fx) = s.apply(Command::KillActor {
        request_id: "k".into(),
        actor_id: a(1),
    });
    assert_eq!(o, Outcome::ActorKilled { actor_id: a(1) });
    assert_eq!(
        fx,
        vec![Effect::StopActor {
            actor_id: a(1),
            worker_id: w(1)
        }]
    );
    assert!(s.actor_by_name("c").is_none());
    assert_eq!(
        s.apply(create("c3", a(3))).0,
        Outcome::ActorCreated { actor_id: a(3) }
    );
}

#[test]
fn actor_restarts_on_system_failure_within_budget() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    let options = ActorOptions {
        max_restarts: 1,
        ..ActorOptions::default()
    };
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options,
    };
    s.apply(Command::CreateActor {
        request_id: "c".into(),
        actor_id: a(1),
        spec,
    });
    for round in 0..2 {
        s.apply(Command::PlaceActor {
            actor_id: a(1),
            worker_id: w(1),
        });
        let kind = FailureKind::System;
        s.apply(Command::ActorDead {
            actor_id: a(1),
            worker_id: w(1),
            kind,
            error: "gone".into(),
        });
        let want = if round == 0 {
            ActorState::Restarting
        } else {
            ActorState::Dead
        };
        assert_eq!(s.actors[&a(1)].state, want);
    }
    assert_eq!(s.actors[&a(1)].restarts, 1);
}

#[test]
fn object_copies_put_pull_and_loss() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    register(&mut s, w(2), 1);
    let id = ObjectId(5 << 8);
    let put = |wk| Command::AddObjectCopy {
        object_id: id,
        worker_id: wk,
        size: 10,
        crc32: 3,
        kind: CopyKind::Put,
    };
    assert_eq!(s.apply(put(w(1))).0, Outcome::Applied);
    let pulled = Command::AddObjectCopy {
        object_id: id,
        worker_id: w(2),
        size: 10,
        crc32: 3,
        kind: CopyKind::Pulled,
    };
    assert_eq!(s.apply(pulled).0, Outcome::Applied);
    assert_eq!(s.objects[&id].locations.len(), 2);
    let unknown = Command::AddObjectCopy {
        object_id: id,
        worker_id: w(9),
        size: 10,
        crc32: 3,
        kind: CopyKind::Put,
    };
    assert!(matches!(
        s.apply(unknown).0,
        Outcome::Rejected(ApplyError::UnknownWorker(_))
    ));
    for wk in [w(1), w(2)] {
        s.apply(Command::RemoveObjectCopies {
            worker_id: wk,
            object_ids: vec![id],
            reason: "evicted".into(),
        });
    }
    let o = &s.objects[&id];
    assert_eq!(o.state, ObjectState::Lost);
    assert!(o.error.clone().unwrap_or_default().contains("evicted"));
}

#[test]
fn a_new_registration_at_the_same_address_retires_the_old_worker() {
    let mut s = ControlState::default();
    register(&mut s, w(1), 1);
    register(&mut s, w(2), 1);
    submit(&mut s, "r", t(1), vec![], TaskOptions::default());
    s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    let spec = ActorSpec {
        class: "counter".into(),
        args: vec![],
        options: ActorOptions::default(),
    };
    s.apply(Command::CreateActor {
        request_id: "c".into(),
        actor_id: a(1),
        spec,
    });
    s.apply(Command::PlaceActor {
        actor_id: a(1),
        worker_id: w(1),
    });
    let id = ObjectId(5 << 8);
    let kind = CopyKind::Put;
    s.apply(Command::AddObjectCopy {
        object_id: id,
        worker_id: w(1),
        size: 1,
        crc32: 1,
        kind,
    });
    // Worker 1's process restarts at the same address and registers as worker 3.
    let mut again = s.workers[&w(1)].clone();
    again.state = WorkerState::Alive;
    let (o, _) = s.apply(Command::RegisterWorker {
        request_id: "reg-new".into(),
        worker_id: w(3),
        address: again.address.clone(),
        pid: 2,
        resources: again.total.clone(),
        arena_capacity: again.arena_capacity,
        functions: again.functions.iter().cloned().collect(),
        classes: again.classes.iter().cloned().collect(),
    });
    assert_eq!(o, Outcome::WorkerRegistered { worker_id: w(3) });
    assert_eq!(s.workers[&w(1)].state, WorkerState::Dead);
    assert_eq!(
        s.tasks[&t(1)].state,
        TaskState::Pending,
        "the running task is retried"
    );
    assert!(
        s.tasks[&t(1)].attempts[0]
            .cause
            .clone()
            .unwrap_or_default()
            .contains("died")
    );
    assert_eq!(
        s.actors[&a(1)].state,
        ActorState::Dead,
        "max_restarts 0: the actor dies"
    );
    assert_eq!(s.objects[&id].state, ObjectState::Lost);
    let (o, _) = s.apply(Command::AssignTask {
        task_id: t(1),
        worker_id: w(1),
    });
    assert!(o.is_noop(), "no placements on a dead worker");
    let (o, _) = s.apply(Command::DeclareWorkerDead {
        worker_id: w(1),
        reason: "again".into(),
    });
    assert!(o.is_noop());
}
