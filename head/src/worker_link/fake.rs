//! A fake [`WorkerPool`] for unit tests: answers at once, by worker address, and records every
//! call with its (tokio, so pausable) time. Addresses marked down fail every call (probes
//! included) like an unreachable worker; a task whose function is `bad` fails with an
//! application error, one whose function is `missing` cannot fetch an argument.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use xnai_proto::ids::{ActorId, ObjectId, WorkerId};

use super::{ActorRequest, CallFailed, TaskReply, TaskRequest, WorkerPool};

/// The fake pool. Thread-safe.
#[derive(Default)]
pub struct FakePool {
    down: Mutex<HashSet<String>>,
    calls: Mutex<Vec<(Instant, String, String)>>,
}

impl FakePool {
    /// A pool in which `down` addresses are unreachable from the start.
    pub fn with_down(down: &[&str]) -> Self {
        let pool = Self::default();
        for address in down {
            pool.set_down(address, true);
        }
        pool
    }

    /// Make `address` unreachable (`true`) or reachable again.
    pub fn set_down(&self, address: &str, down: bool) {
        let mut set = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down {
            set.insert(address.to_string());
        } else {
            set.remove(address);
        }
    }

    /// Every call so far, as (address, "exec FUNCTION" | "start CLASS" | "stop ID" | ...).
    pub fn calls(&self) -> Vec<(String, String)> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .iter()
            .map(|(_, a, w)| (a.clone(), w.clone()))
            .collect()
    }

    /// How many calls so far were `what`.
    pub fn count(&self, what: &str) -> usize {
        self.times_of(what).len()
    }

    /// When each call that was `what` was made, in order.
    pub fn times_of(&self, what: &str) -> Vec<Instant> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .iter()
            .filter(|(_, _, w)| w == what)
            .map(|(t, _, _)| *t)
            .collect()
    }

    /// Record a call; returns whether `address` is down.
    fn record(&self, address: &str, what: String) -> bool {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((
            Instant::now(),
            address.to_string(),
            what,
        ));
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(address)
    }

    fn unit(&self, address: &str, what: String) -> BoxFuture<'static, Result<(), CallFailed>> {
        let down = self.record(address, what);
        Box::pin(async move {
            if down {
                Err(CallFailed("connection refused".into()))
            } else {
                Ok(())
            }
        })
    }
}

impl WorkerPool for FakePool {
    fn execute_task(
        &self,
        address: &str,
        req: TaskRequest,
    ) -> BoxFuture<'static, Result<TaskReply, CallFailed>> {
        let down = self.record(address, format!("exec {}", req.function));
        let reply = match (down, req.function.as_str()) {
            (true, _) => Err(CallFailed("connection refused".into())),
            (false, "bad") => Ok(TaskReply::Failed("bad: no".into())),
            (false, "missing") => Ok(TaskReply::ArgumentUnavailable("no holder answers".into())),
            (false, _) => Ok(TaskReply::Stored {
                size: req.args.len() as u64,
                crc32: 42,
            }),
        };
        Box::pin(async move { reply })
    }

    fn start_actor(
        &self,
        address: &str,
        req: ActorRequest,
    ) -> BoxFuture<'static, Result<Option<String>, CallFailed>> {
        let started = self.unit(address, format!("start {}", req.class));
        Box::pin(async move { started.await.map(|()| None) })
    }

    fn stop_actor(
        &self,
        address: &str,
        actor_id: ActorId,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        self.unit(address, format!("stop {actor_id}"))
    }

    fn delete_objects(
        &self,
        address: &str,
        _meant_for: Option<WorkerId>,
        object_ids: Vec<ObjectId>,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        self.unit(address, format!("delete {}", object_ids.len()))
    }

    fn ping(
        &self,
        address: &str,
        _deadline: Duration,
    ) -> BoxFuture<'static, Result<(), CallFailed>> {
        self.unit(address, "ping".into())
    }
}
