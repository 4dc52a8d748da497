//! `ControlState::apply`: the one place the control state changes. Each command is checked
//! against the state, applied, and turned into an outcome plus effects for the runtime;
//! retry decisions and failure cascades to dependent tasks happen here, deterministically.

use xnai_proto::ids::{ObjectId, TaskId, WorkerId};

use super::ControlState;
use super::command::{ApplyError, Command, Effect, Outcome};
use super::retention::inline_len;
use super::types::*;

impl ControlState {
    /// Apply one command. Pure: no I/O, no clock, no randomness. Commands with a request id
    /// that was applied before return the remembered outcome and change nothing.
    pub fn apply(&mut self, cmd: Command) -> (Outcome, Vec<Effect>) {
        let request_id = match &cmd {
            Command::RegisterWorker { request_id, .. }
            | Command::SubmitTask { request_id, .. }
            | Command::CreateActor { request_id, .. }
            | Command::KillActor { request_id, .. }
            | Command::OpenSession { request_id, .. } => Some(request_id.clone()),
            _ => None,
        };
        if let Some(seen) = request_id.as_deref().and_then(|r| self.remembered(r)) {
            return (seen.clone(), Vec::new());
        }
        let mut effects = Vec::new();
        let outcome = match cmd {
            Command::RegisterWorker {
                worker_id,
                address,
                pid,
                resources,
                arena_capacity,
                functions,
                classes,
                ..
            } => {
                let record = WorkerRecord {
                    address,
                    pid,
                    available: resources.clone(),
                    total: resources,
                    arena_capacity,
                    functions: functions.into_iter().collect(),
                    classes: classes.into_iter().collect(),
                    state: WorkerState::Alive,
                    breaker: BreakerState::Closed,
                    left_objects: Default::default(),
                    left_actors: Default::default(),
                };
                self.register_worker(worker_id, record)
            }
            Command::DeclareWorkerDead { worker_id, reason } => {
                self.worker_dead(worker_id, &reason)
            }
            Command::SubmitTask { task_id, spec, .. } => self.submit_task(task_id, spec),
            Command::AssignTask { task_id, worker_id } => {
                self.assign_task(task_id, worker_id, &mut effects)
            }
            Command::TaskFinished {
                task_id,
                worker_id,
                attempt,
                size,
                crc32,
            } => self.task_finished(task_id, worker_id, attempt, size, crc32),
            Command::TaskFailed {
                task_id,
                worker_id,
                attempt,
                kind,
                error,
            } => self.task_failed(task_id, worker_id, attempt, kind, error),
            Command::CreateActor { actor_id, spec, .. } => self.create_actor(actor_id, spec),
            Command::PlaceActor {
                actor_id,
                worker_id,
            } => self.place_actor(actor_id, worker_id, &mut effects),
            Command::ActorAlive {
                actor_id,
                worker_id,
            } => self.actor_alive(actor_id, worker_id, &mut effects),
            Command::ActorDead {
                actor_id,
                worker_id,
                kind,
                error,
            } => self.actor_dead(actor_id, worker_id, kind, error),
            Command::KillActor { actor_id, .. } => self.kill_actor(actor_id, &mut effects),
            Command::AddObjectCopy {
                object_id,
                worker_id,
                size,
                crc32,
                kind,
            } => self.add_copy(object_id, worker_id, size, crc32, kind),
            Command::RemoveObjectCopies {
                worker_id,
                object_ids,
                reason,
            } => self.remove_copies(worker_id, &object_ids, &reason),
            Command::SetBreaker { worker_id, state } => self.set_breaker(worker_id, state),
            Command::OpenSession {
                session_id,
                lease_ms,
                ..
            } => self.open_session(session_id, lease_ms),
            Command::CloseSession { session_id, reason } => self.close_session(session_id, &reason),
            Command::ReleaseObjects {
                session_id,
                object_ids,
            } => self.release_objects(session_id, &object_ids),
        };
        effects.append(&mut self.fx);
        let effects = Self::coalesce_deletes(effects);
        if let Some(r) = request_id
            && !outcome.is_noop()
        {
            self.remember(r, &outcome);
        }
        (outcome, effects)
    }

    fn submit_task(&mut self, task_id: TaskId, spec: TaskSpec) -> Outcome {
        let offered = self.offered_functions();
        if !offered.is_empty() && !offered.contains(&spec.function) {
            return Outcome::Rejected(ApplyError::UnknownFunction {
                function: spec.function,
                offered,
            });
        }
        let object_id = task_id.return_object();
        if self.tasks.contains_key(&task_id) || self.objects.contains_key(&object_id) {
            return Outcome::Rejected(ApplyError::Conflict(format!("task {task_id} exists")));
        }
        let owner = spec.options.session;
        if let Some(s) = owner
            && !self.sessions.contains_key(&s)
        {
            return Outcome::Rejected(ApplyError::NoSuchSession(s));
        }
        let mut broken = None;
        for arg in &spec.args {
            if let Arg::Ref(id) = arg {
                match self.object_view(id) {
                    None => return Outcome::Rejected(ApplyError::NoSuchObject(*id)),
                    Some(o) if matches!(o.state, ObjectState::Pending | ObjectState::Ready) => {}
                    Some(o) => broken = broken.or_else(|| Some(dependency_error(*id, &o))),
                }
            }
        }
        if let Err(e) = self.check_inline_budget(&spec.args) {
            return Outcome::Rejected(e);
        }
        self.inline_bytes += inline_len(&spec.args);
        self.arg_index.add_task(task_id, &spec.args);
        let seq = self.take_seq();
        let task = TaskRecord {
            seq,
            spec,
            state: TaskState::Pending,
            attempts: Vec::new(),
            worker: None,
            error: None,
        };
        self.tasks.insert(task_id, task);
        let mut object = pending_object(task_id);
        object.owner = owner;
        self.objects.insert(object_id, object);
        self.pending_tasks.insert(seq, task_id);
        self.unfinished_tasks += 1;
        if let Some(error) = broken {
            self.fail_task(task_id, error);
        }
        Outcome::TaskSubmitted { task_id, object_id }
    }

    fn assign_task(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        let Some(task) = self.tasks.get(&task_id) else {
            return Outcome::Ignored(format!("no task {task_id}"));
        };
        if task.state != TaskState::Pending || !self.args_ready(&task.spec) {
            return Outcome::Ignored(format!("task {task_id} is not ready to run"));
        }
        let need = task.spec.options.resources.clone();
        let seq = task.seq;
        let Some(worker) = self
            .workers
            .get_mut(&worker_id)
            .filter(|w| w.state == WorkerState::Alive)
        else {
            return Outcome::Ignored(format!("no worker {worker_id}"));
        };
        if !worker.available.can_hold(&need) || !worker.total.has_labels(&need) {
            return Outcome::Ignored(format!("worker {worker_id} cannot hold task {task_id}"));
        }
        worker.available.take(&need);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return Outcome::Ignored(format!("no task {task_id}"));
        };
        task.state = TaskState::Running;
        task.worker = Some(worker_id);
        task.attempts.push(Attempt {
            worker: worker_id,
            cause: None,
            charged: true,
        });
        let attempt = task.attempts.len() as u32;
        self.pending_tasks.remove(&seq);
        fx.push(Effect::DispatchTask {
            task_id,
            worker_id,
            attempt,
        });
        Outcome::Applied
    }

    /// The running task for this attempt, or why the result is stale.
    fn current_attempt(
        &self,
        task_id: TaskId,
        worker_id: WorkerId,
        attempt: u32,
    ) -> Result<(), String> {
        match self.tasks.get(&task_id) {
            Some(t)
                if t.state == TaskState::Running
                    && t.worker == Some(worker_id)
                    && t.attempts.len() as u32 == attempt =>
            {
                Ok(())
            }
            _ => Err(format!("stale result of task {task_id} attempt {attempt}")),
        }
    }

    /// Stop counting a running task against its worker's resources.
    fn release_task(&mut self, task_id: TaskId) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if let Some(w) = task.worker.take()
            && let Some(worker) = self.workers.get_mut(&w)
        {
            worker
                .available
                .give_back(&task.spec.options.resources, &worker.total);
        }
    }

    fn task_finished(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        attempt: u32,
        size: u64,
        crc32: u32,
    ) -> Outcome {
        if let Err(why) = self.current_attempt(task_id, worker_id, attempt) {
            return Outcome::Ignored(why);
        }
        self.release_task(task_id);
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.state = TaskState::Finished;
        }
        self.unfinished_tasks = self.unfinished_tasks.saturating_sub(1);
        let object = self
            .objects
            .entry(task_id.return_object())
            .or_insert_with(|| pending_object(task_id));
        object.state = ObjectState::Ready;
        object.size = size;
        object.crc32 = crc32;
        object.error = None;
        object.locations.insert(worker_id);
        self.task_done(task_id);
        Outcome::Applied
    }

    pub(super) fn task_failed(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        attempt: u32,
        kind: FailureKind,
        error: String,
    ) -> Outcome {
        if let Err(why) = self.current_attempt(task_id, worker_id, attempt) {
            return Outcome::Ignored(why);
        }
        self.release_task(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return Outcome::Ignored(format!("no task {task_id}"));
        };
        let label = match kind {
            FailureKind::System => "system error",
            FailureKind::Application => "application error",
            FailureKind::ArgumentUnavailable => "argument unavailable",
        };
        let free_retry = kind == FailureKind::ArgumentUnavailable
            && task.argument_misses() < MAX_ARGUMENT_MISSES;
        if let Some(last) = task.attempts.last_mut() {
            last.cause = Some(format!("{label}: {error}"));
            last.charged = !free_retry;
        }
        if free_retry {
            task.state = TaskState::Pending;
            self.pending_tasks.insert(task.seq, task_id);
            self.fail_if_args_gone(task_id);
            return Outcome::Applied;
        }
        let retriable = kind != FailureKind::Application || task.spec.options.retry_exceptions;
        let failures = task.charged_attempts();
        if retriable && failures <= task.spec.options.max_retries {
            task.state = TaskState::Pending;
            self.pending_tasks.insert(task.seq, task_id);
            self.fail_if_args_gone(task_id);
            return Outcome::Applied;
        }
        let final_error = match kind {
            FailureKind::Application => error,
            FailureKind::System | FailureKind::ArgumentUnavailable => {
                let causes: Vec<String> = task
                    .attempts
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.charged)
                    .map(|(i, a)| {
                        let cause = a.cause.as_deref().unwrap_or("unknown");
                        format!("attempt {} on worker {}: {cause}", i + 1, a.worker)
                    })
                    .collect();
                let misses = match task.argument_misses() {
                    0 => String::new(),
                    n => format!(" (and {n} uncounted one(s) that could not fetch an argument)"),
                };
                format!(
                    "task failed after {failures} attempt(s){misses}: {}",
                    causes.join("; ")
                )
            }
        };
        self.fail_task(task_id, final_error);
        Outcome::Applied
    }

    /// Fail a task and its object for good, then every pending task that depends on it.
    pub(super) fn fail_task(&mut self, task_id: TaskId, error: String) {
        let mut work = vec![(task_id, error)];
        while let Some((id, error)) = work.pop() {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            if matches!(task.state, TaskState::Finished | TaskState::Failed) {
                continue;
            }
            task.state = TaskState::Failed;
            task.error = Some(error.clone());
            let seq = task.seq;
            self.pending_tasks.remove(&seq);
            self.release_task(id);
            self.unfinished_tasks = self.unfinished_tasks.saturating_sub(1);
            let object_id = id.return_object();
            let object = self
                .objects
                .entry(object_id)
                .or_insert_with(|| pending_object(id));
            object.state = ObjectState::Failed;
            object.error = Some(error);
            let failed = object.clone();
            for dep in self.pending_dependents(object_id) {
                work.push((dep, dependency_error(object_id, &failed)));
            }
            self.task_done(id);
        }
    }

    /// Fail a pending task at once if one of its argument objects can no longer become ready
    /// (failed, freed, or lost for good).
    pub(super) fn fail_if_args_gone(&mut self, task_id: TaskId) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let gone = task.spec.args.iter().find_map(|a| match a {
            Arg::Ref(id) => match self.object_view(id) {
                Some(o)
                    if matches!(
                        o.state,
                        ObjectState::Failed | ObjectState::Lost | ObjectState::Freed
                    ) =>
                {
                    Some(dependency_error(*id, &o))
                }
                Some(_) => None,
                None => Some(format!("argument object {id} is unknown")),
            },
            Arg::Inline(_) => None,
        });
        if let Some(error) = gone {
            self.fail_task(task_id, error);
        }
    }
}

pub(super) fn pending_object(task_id: TaskId) -> ObjectRecord {
    ObjectRecord {
        producing_task: Some(task_id),
        ..pending_object_for_put()
    }
}

pub(super) fn pending_object_for_put() -> ObjectRecord {
    ObjectRecord {
        state: ObjectState::Pending,
        size: 0,
        crc32: 0,
        locations: Default::default(),
        producing_task: None,
        error: None,
        owner: None,
        released: false,
    }
}

/// Why a task cannot run because its argument object is unavailable.
pub(super) fn dependency_error(object_id: ObjectId, o: &ObjectRecord) -> String {
    let state = match o.state {
        ObjectState::Failed => "failed",
        ObjectState::Lost => "lost",
        ObjectState::Freed => "freed",
        ObjectState::Pending | ObjectState::Ready => "unavailable",
    };
    let why = o.error.as_deref().unwrap_or("no reason recorded");
    format!("argument object {object_id} {state}: {why}")
}
