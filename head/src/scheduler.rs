//! The scheduler: a pure function from the control state and the heartbeat view to placement
//! commands (`AssignTask`, `PlaceActor`). It does no I/O; the runtime proposes what it returns,
//! and `apply` re-checks every placement, so a stale decision is harmless.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use xnai_proto::ids::WorkerId;

use crate::soft::SoftView;
use crate::state::{Arg, Command, ControlState, Resources, WorkerRecord};

/// Most pending tasks looked at in one pass, so a deep queue of blocked tasks stays cheap.
pub const MAX_SCAN: usize = 20_000;

/// A placeable worker and what is still free on it during this pass.
struct Slot<'a> {
    record: &'a WorkerRecord,
    free: Resources,
}

impl Slot<'_> {
    /// Fraction of CPUs in use, compared exactly: a.used/a.total vs b.used/b.total.
    fn cmp_load(&self, other: &Slot<'_>) -> Ordering {
        let used = |s: &Slot<'_>| {
            (s.record.total.milli_cpus - s.free.milli_cpus.min(s.record.total.milli_cpus)) as u128
        };
        let total = |s: &Slot<'_>| s.record.total.milli_cpus.max(1) as u128;
        (used(self) * total(other)).cmp(&(used(other) * total(self)))
    }

    fn fits(&self, need: &Resources) -> bool {
        self.free.can_hold(need) && self.record.total.has_labels(need)
    }
}

/// Decide placements for pending tasks (in submission order) and pending actors (in creation
/// order). A task is placed once every argument object is ready, on a placeable worker that
/// offers its function and fits its resources, only on a worker where this task failed least
/// often among those that could ever hold it (a retry waits for room there), then the one holding the most argument bytes, then the least loaded, then
/// the lowest id.
pub fn schedule(state: &ControlState, view: &SoftView) -> Vec<Command> {
    let mut slots: BTreeMap<WorkerId, Slot<'_>> = state
        .workers
        .iter()
        .filter(|(id, _)| view.placeable(id) && state.placeable(id))
        .map(|(id, record)| {
            (
                *id,
                Slot {
                    record,
                    free: record.available.clone(),
                },
            )
        })
        .collect();
    let mut out = Vec::new();
    if slots.is_empty() {
        return out;
    }
    for task_id in state.pending_tasks.values().take(MAX_SCAN) {
        let Some(task) = state.tasks.get(task_id) else {
            continue;
        };
        if view.held.contains(task_id) || !state.args_ready(&task.spec) {
            continue;
        }
        let need = &task.spec.options.resources;
        let local_bytes = |w: &WorkerId| -> u64 {
            task.spec
                .args
                .iter()
                .filter_map(|a| match a {
                    Arg::Ref(id) => state.objects.get(id).filter(|o| o.locations.contains(w)),
                    Arg::Inline(_) => None,
                })
                .map(|o| o.size)
                .sum()
        };
        // Retries go elsewhere when they can: fewer failed attempts on a worker first. A retry
        // waits for room on a worker where it failed least rather than going straight back to
        // the one that just failed it because that one is free now (a killed worker's slots
        // free up at once, before its silence is noticed).
        let failed_on = |w: &WorkerId| task.attempts.iter().filter(|a| a.worker == *w).count();
        let offers = |s: &Slot<'_>| {
            s.record.total.can_hold(need)
                && s.record.total.has_labels(need)
                && s.record.functions.contains(&task.spec.function)
        };
        let least_failed = slots
            .iter()
            .filter(|(_, s)| offers(s))
            .map(|(id, _)| failed_on(id))
            .min()
            .unwrap_or(0);
        let best = slots
            .iter()
            .filter(|(id, s)| {
                s.fits(need)
                    && s.record.functions.contains(&task.spec.function)
                    && failed_on(id) <= least_failed
            })
            .map(|(id, s)| (id, s, failed_on(id), local_bytes(id)))
            .min_by(|a, b| {
                a.2.cmp(&b.2)
                    .then_with(|| b.3.cmp(&a.3))
                    .then_with(|| a.1.cmp_load(b.1))
                    .then_with(|| a.0.cmp(b.0))
            })
            .map(|(id, ..)| *id);
        if let Some(worker_id) = best
            && let Some(slot) = slots.get_mut(&worker_id)
        {
            slot.free.take(need);
            out.push(Command::AssignTask {
                task_id: *task_id,
                worker_id,
            });
        }
    }
    for actor_id in state.pending_actors.values() {
        let Some(actor) = state.actors.get(actor_id) else {
            continue;
        };
        let need = &actor.spec.options.resources;
        let best = slots
            .iter()
            .filter(|(_, s)| s.fits(need) && s.record.classes.contains(&actor.spec.class))
            .min_by(|a, b| a.1.cmp_load(b.1).then_with(|| a.0.cmp(b.0)))
            .map(|(id, _)| *id);
        if let Some(worker_id) = best
            && let Some(slot) = slots.get_mut(&worker_id)
        {
            slot.free.take(need);
            out.push(Command::PlaceActor {
                actor_id: *actor_id,
                worker_id,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soft::SoftWorker;
    use crate::state::{ActorOptions, ActorSpec, CopyKind, TaskOptions, TaskSpec};
    use xnai_proto::ids::{ActorId, ObjectId, TaskId};

    fn w(n: u128) -> WorkerId {
        WorkerId(n << 8)
    }

    fn cluster(cpus: &[u64]) -> (ControlState, SoftView) {
        let mut s = ControlState::default();
        let mut view = SoftView::default();
        for (i, c) in cpus.iter().enumerate() {
            let id = w(i as u128 + 1);
            let mut resources = Resources::cpus(*c);
            resources.labels.insert("zone".into(), format!("z{i}"));
            s.apply(Command::RegisterWorker {
                request_id: format!("r{i}"),
                worker_id: id,
                address: format!("127.0.0.1:{}", 7000 + i),
                pid: 1,
                resources,
                arena_capacity: 1 << 30,
                functions: vec!["echo".into(), "digest".into()],
                classes: vec!["counter".into()],
            });
            view.workers.insert(id, SoftWorker::default());
        }
        (s, view)
    }

    fn submit(
        s: &mut ControlState,
        n: u128,
        function: &str,
        args: Vec<Arg>,
        options: TaskOptions,
    ) -> TaskId {
        let task_id = TaskId(n << 8);
        let spec = TaskSpec {
            function: function.into(),
            args,
            options,
        };
        s.apply(Command::SubmitTask {
            request_id: format!("t{n}"),
            task_id,
            spec,
        });
        task_id
    }

    fn apply_all(s: &mut ControlState, cmds: &[Command]) {
        for c in cmds {
            assert!(
                !s.apply(c.clone()).0.is_noop(),
                "scheduler proposed a no-op: {c:?}"
            );
        }
    }

    #[test]
    fn held_tasks_wait() {
        let (mut s, mut view) = cluster(&[2]);
        let held = submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let free = submit(&mut s, 2, "echo", vec![], TaskOptions::default());
        view.held.insert(held);
        let placed: Vec<TaskId> = schedule(&s, &view)
            .into_iter()
            .filter_map(|c| match c {
                Command::AssignTask { task_id, .. } => Some(task_id),
                _ => None,
            })
            .collect();
        assert_eq!(placed, vec![free]);
        view.held.clear();
        assert_eq!(schedule(&s, &view).len(), 2);
    }

    #[test]
    fn spreads_by_load_and_respects_cpus() {
        let (mut s, view) = cluster(&[2, 1]);
        for n in 1..=4 {
            submit(&mut s, n, "echo", vec![], TaskOptions::default());
        }
        let cmds = schedule(&s, &view);
        assert_eq!(cmds.len(), 3, "only 3 CPUs in the cluster: {cmds:?}");
        apply_all(&mut s, &cmds);
        assert!(schedule(&s, &view).is_empty());
        assert_eq!(s.pending_tasks.len(), 1);
    }

    #[test]
    fn waits_for_arguments_then_prefers_their_location() {
        let (mut s, view) = cluster(&[4, 4]);
        let big = ObjectId(9 << 8);
        s.apply(Command::AddObjectCopy {
            object_id: big,
            worker_id: w(2),
            size: 1000,
            crc32: 0,
            kind: CopyKind::Put,
        });
        let producer = submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let args = vec![Arg::Ref(big), Arg::Ref(producer.return_object())];
        let consumer = submit(&mut s, 2, "digest", args, TaskOptions::default());
        let cmds = schedule(&s, &view);
        assert_eq!(
            cmds,
            vec![Command::AssignTask {
                task_id: producer,
                worker_id: w(1)
            }]
        );
        apply_all(&mut s, &cmds);
        s.apply(Command::TaskFinished {
            task_id: producer,
            worker_id: w(1),
            attempt: 1,
            size: 10,
            crc32: 0,
        });
        let cmds = schedule(&s, &view);
        assert_eq!(
            cmds,
            vec![Command::AssignTask {
                task_id: consumer,
                worker_id: w(2)
            }]
        );
    }

    #[test]
    fn skips_silent_workers_labels_and_missing_functions() {
        let (mut s, mut view) = cluster(&[1, 1]);
        if let Some(sw) = view.workers.get_mut(&w(1)) {
            sw.silent_ms = 3500;
        }
        submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let cmds = schedule(&s, &view);
        assert_eq!(
            cmds,
            vec![Command::AssignTask {
                task_id: TaskId(1 << 8),
                worker_id: w(2)
            }]
        );
        let mut options = TaskOptions::default();
        options.resources.labels.insert("zone".into(), "z0".into());
        submit(&mut s, 2, "echo", vec![], options);
        view.workers.clear();
        assert!(
            schedule(&s, &view).is_empty(),
            "no heartbeats, no placements"
        );
    }

    #[test]
    fn a_retry_waits_for_room_elsewhere_instead_of_returning_to_the_worker_that_failed_it() {
        // The compose test's failure: a worker is killed, its slot frees at once, and every
        // retry went straight back to it while the other worker was busy.
        let (mut s, view) = cluster(&[1, 1]);
        let retried = submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let busy = submit(&mut s, 2, "echo", vec![], TaskOptions::default());
        let first = schedule(&s, &view);
        apply_all(&mut s, &first);
        let on = |c: &[Command], t: TaskId| {
            c.iter().find_map(|c| match c {
                Command::AssignTask { task_id, worker_id } if *task_id == t => Some(*worker_id),
                _ => None,
            })
        };
        let failed_on = on(&first, retried).expect("placed");
        let other = on(&first, busy).expect("placed");
        assert_ne!(failed_on, other);
        s.apply(Command::TaskFailed {
            task_id: retried,
            worker_id: failed_on,
            attempt: 1,
            kind: crate::state::FailureKind::System,
            error: "worker 127.0.0.1:7000: transport error".into(),
        });
        assert_eq!(s.pending_tasks.len(), 1, "the retry is pending");
        assert!(
            schedule(&s, &view).is_empty(),
            "the retry must not go back to the worker that just failed it"
        );
        s.apply(Command::TaskFinished {
            task_id: busy,
            worker_id: other,
            attempt: 1,
            size: 1,
            crc32: 0,
        });
        assert_eq!(on(&schedule(&s, &view), retried), Some(other));

        // With only the failed worker able to run it, the retry does go back there.
        let (mut s, view) = cluster(&[1]);
        let t = submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let placed = schedule(&s, &view);
        apply_all(&mut s, &placed);
        s.apply(Command::TaskFailed {
            task_id: t,
            worker_id: w(1),
            attempt: 1,
            kind: crate::state::FailureKind::System,
            error: "transient".into(),
        });
        assert_eq!(on(&schedule(&s, &view), t), Some(w(1)));
    }

    #[test]
    fn places_actors_with_zero_cpus_by_default() {
        let (mut s, view) = cluster(&[1]);
        submit(&mut s, 1, "echo", vec![], TaskOptions::default());
        let spec = ActorSpec {
            class: "counter".into(),
            args: vec![],
            options: ActorOptions::default(),
        };
        let actor_id = ActorId(3 << 8);
        s.apply(Command::CreateActor {
            request_id: "a".into(),
            actor_id,
            spec,
        });
        let cmds = schedule(&s, &view);
        assert_eq!(cmds.len(), 2);
        assert_eq!(
            cmds[1],
            Command::PlaceActor {
                actor_id,
                worker_id: w(1)
            }
        );
        apply_all(&mut s, &cmds);
    }
}
