//! Hosts actors as actix actors. The actix `System` runs on its own thread with a few
//! `Arbiter` threads (actix actors need a local task set, tonic handlers run on tokio's pool);
//! tonic handlers talk to actors through `Addr`, which is `Send + Sync`. Each actor's mailbox
//! keeps calls in arrival order and is bounded at [`MAILBOX_LIMIT`] pending calls.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use actix::{Arbiter, ArbiterHandle, System};
use bytes::Bytes;
use xnai_proto::ids::ActorId;

use super::{ActorBehavior, ClassRegistry, MethodResult};
use crate::error::{Result, WorkerError};

/// Pending calls an actor's mailbox holds before further calls get RESOURCE_EXHAUSTED.
pub const MAILBOX_LIMIT: usize = 1024;

struct HostedActor {
    id: ActorId,
    behavior: Box<dyn ActorBehavior>,
}

impl Actor for HostedActor {
    type Context = Context<Self>;
}

struct Call {
    method: String,
    args: Vec<Bytes>,
}

impl Message for Call {
    type Result = MethodResult;
}

impl Handler<Call> for HostedActor {
    type Result = MethodResult;

    fn handle(&mut self, msg: Call, _ctx: &mut Context<Self>) -> MethodResult {
        let _span =
            tracing::debug_span!("actor_call", actor_id = %self.id, method = %msg.method).entered();
        let behavior = &mut self.behavior;
        std::panic::catch_unwind(AssertUnwindSafe(|| behavior.call(&msg.method, msg.args)))
            .unwrap_or_else(|_| Err(format!("actor method {:?} panicked", msg.method)))
    }
}

struct Stop;

impl Message for Stop {
    type Result = ();
}

impl Handler<Stop> for HostedActor {
    type Result = ();

    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Hosted {
    addr: Addr<HostedActor>,
    pending: AtomicUsize,
}

/// Decrements the pending-call count when a call ends (or is abandoned).
struct PendingGuard<'a>(&'a AtomicUsize);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The actors running on this worker. Thread-safe; share it behind an `Arc`.
pub struct ActorHost {
    classes: ClassRegistry,
    system: System,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    actors: RwLock<HashMap<ActorId, Arc<Hosted>>>,
}

impl ActorHost {
    /// Start the actix system on its own thread with `threads` arbiter threads.
    pub fn start(classes: ClassRegistry, threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("xnai-actix".into())
            .spawn(move || {
                let sys = System::new();
                sys.block_on(async move {
                    let arbiters: Vec<ArbiterHandle> =
                        (0..threads).map(|_| Arbiter::new().handle()).collect();
                    let _ = tx.send((System::current(), arbiters));
                });
                if let Err(e) = sys.run() {
                    tracing::error!(error = %e, "actix system stopped with an error");
                }
            })
            .map_err(|e| WorkerError::io("starting the actor threads", e))?;
        let (system, arbiters) = rx
            .recv()
            .map_err(|_| WorkerError::Config("the actor system failed to start".into()))?;
        Ok(Self {
            classes,
            system,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            actors: RwLock::new(HashMap::new()),
        })
    }

    /// Names of the classes this host can construct.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.names()
    }

    /// Whether this host can construct actors of `class`.
    pub fn offers(&self, class: &str) -> bool {
        self.classes.get(class).is_some()
    }

    /// Whether actor `id` lives here.
    pub fn contains(&self, id: &ActorId) -> bool {
        self.read().contains_key(id)
    }

    /// Number of live actors.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no actor is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ActorId, Arc<Hosted>>> {
        self.actors.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ActorId, Arc<Hosted>>> {
        self.actors.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Construct actor `id` of `class`. `Ok(Err(text))` is a constructor (application) error.
    /// Starting an actor that already runs here is a no-op, so retries are safe.
    pub async fn start_actor(
        &self,
        id: ActorId,
        class: &str,
        args: Vec<Bytes>,
    ) -> Result<Result<(), String>> {
        let constructor = self
            .classes
            .get(class)
            .ok_or_else(|| WorkerError::UnknownClass {
                name: class.to_string(),
                offered: self.classes.names().join(", "),
            })?;
        if self.read().contains_key(&id) {
            return Ok(Ok(()));
        }
        let built = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| constructor(args)))
                .unwrap_or_else(|_| Err("actor constructor panicked".to_string()))
        })
        .await
        .map_err(|_| WorkerError::ShuttingDown)?;
        let behavior = match built {
            Ok(b) => b,
            Err(text) => return Ok(Err(text)),
        };
        let n = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        let mut actors = self.write();
        if actors.contains_key(&id) {
            return Ok(Ok(()));
        }
        let addr = HostedActor::start_in_arbiter(&self.arbiters[n], move |ctx| {
            ctx.set_mailbox_capacity(MAILBOX_LIMIT);
            HostedActor { id, behavior }
        });
        actors.insert(
            id,
            Arc::new(Hosted {
                addr,
                pending: AtomicUsize::new(0),
            }),
        );
        tracing::info!(actor_id = %id, class, "actor started");
        Ok(Ok(()))
    }

    /// Stop an actor; calls already queued still run. Returns whether it was here.
    pub fn stop_actor(&self, id: ActorId) -> bool {
        match self.write().remove(&id) {
            Some(h) => {
                h.addr.do_send(Stop);
                tracing::info!(actor_id = %id, "actor stopped");
                true
            }
            None => false,
        }
    }

    /// Call a method. `Ok(Err(text))` is the method's application error.
    pub async fn call(
        &self,
        id: ActorId,
        method: String,
        args: Vec<Bytes>,
    ) -> Result<MethodResult> {
        let hosted = self
            .read()
            .get(&id)
            .cloned()
            .ok_or(WorkerError::ActorNotFound(id))?;
        let before = hosted.pending.fetch_add(1, Ordering::AcqRel);
        let _guard = PendingGuard(&hosted.pending);
        if before >= MAILBOX_LIMIT {
            return Err(WorkerError::MailboxFull {
                actor: id,
                pending: MAILBOX_LIMIT,
            });
        }
        hosted
            .addr
            .send(Call { method, args })
            .await
            .map_err(|_| WorkerError::ActorNotFound(id))
    }

    /// Stop every actor and the actix system.
    pub fn shutdown(&self) {
        self.write().clear();
        self.system.stop();
    }
}

impl Drop for ActorHost {
    fn drop(&mut self) {
        self.system.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> ActorHost {
        let mut classes = ClassRegistry::with_builtins();
        classes.register("slow", |_args| {
            struct Slow;
            impl ActorBehavior for Slow {
                fn call(&mut self, method: &str, _args: Vec<Bytes>) -> MethodResult {
                    if method == "panic" {
                        panic!("boom");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Ok(Bytes::new())
                }
            }
            Ok(Box::new(Slow))
        });
        ActorHost::start(classes, 2).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counter_answers_in_order() {
        let h = host();
        let id = ActorId::random();
        h.start_actor(id, "counter", vec![]).await.unwrap().unwrap();
        h.start_actor(id, "counter", vec![]).await.unwrap().unwrap(); // idempotent
        let calls: Vec<_> = (0..50).map(|_| h.call(id, "incr".into(), vec![])).collect();
        let got: Vec<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| String::from_utf8(r.unwrap().unwrap().to_vec()).unwrap())
            .collect();
        let want: Vec<String> = (1..=50).map(|n| n.to_string()).collect();
        assert_eq!(got, want);
        let e = h.call(id, "foo".into(), vec![]).await.unwrap().unwrap_err();
        assert_eq!(e, "counter has no method \"foo\"; methods: incr, get");
        assert!(h.stop_actor(id));
        assert!(matches!(
            h.call(id, "get".into(), vec![]).await,
            Err(WorkerError::ActorNotFound(_))
        ));
        h.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_for_unknown_class_bad_args_and_panics() {
        let h = host();
        let id = ActorId::random();
        let e = h.start_actor(id, "nope", vec![]).await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "unknown actor class \"nope\"; this worker offers: counter, slow"
        );
        let e = h
            .start_actor(id, "counter", vec![Bytes::from_static(b"x")])
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.contains("initial value must be an integer"), "{e}");
        assert!(h.is_empty());
        h.start_actor(id, "slow", vec![]).await.unwrap().unwrap();
        let e = h
            .call(id, "panic".into(), vec![])
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.contains("panicked"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_mailbox_is_refused() {
        let h = Arc::new(host());
        let id = ActorId::random();
        h.start_actor(id, "slow", vec![]).await.unwrap().unwrap();
        let mut pending = Vec::new();
        for _ in 0..MAILBOX_LIMIT {
            let h = Arc::clone(&h);
            pending.push(tokio::spawn(async move {
                h.call(id, "wait".into(), vec![]).await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let e = h.call(id, "wait".into(), vec![]).await.err().unwrap();
        assert!(matches!(e, WorkerError::MailboxFull { .. }), "{e}");
        for p in pending {
            p.abort();
        }
        h.stop_actor(id);
    }
}
