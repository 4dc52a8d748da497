//! Actors: creation (then waiting until alive), lookups, kills, and [`ActorHandle::call`], which
//! goes straight to the hosting worker over a cached channel, so a call costs one round trip.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tonic::Code;
use tonic::transport::Channel;
use xnai_proto::ids::ActorId;
use xnai_proto::net::{self, Traffic};
use xnai_proto::pb::{self, call_actor_reply};

use super::error::{Error, Result};
use super::link::head_call;
use super::types::{ActorInfo, ActorOptions, ActorState, Arg};
use super::{Client, check_inline, check_name, convert, request_id, wait_ms};

/// A live actor: calls go straight to the worker hosting it. Cheap to clone; clones share the
/// cached route to the worker.
///
/// When the hosting worker dies, a call that certainly never reached it (no connection could be
/// made, breaker open: `xnai_proto::net::never_reached`) waits until the head has restarted the actor elsewhere and is sent again; a call that
/// may have run is retried only while `max_task_retries` allows (-1: always), else it fails
/// with a retriable UNAVAILABLE error.
#[derive(Clone)]
pub struct ActorHandle {
    client: Client,
    id: ActorId,
    id_hex: Arc<str>,
    name: Arc<str>,
    max_task_retries: i32,
    /// Route to the hosting worker, dropped when the actor seems to have moved.
    route: Arc<Mutex<Option<Route>>>,
}

/// Where the actor was last seen alive.
#[derive(Clone)]
struct Route {
    channel: Channel,
    address: Arc<str>,
    restarts: u32,
}

impl std::fmt::Debug for ActorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl ActorHandle {
    fn new(client: Client, info: &ActorInfo, max_task_retries: i32) -> Result<Self> {
        let route = Route {
            channel: client
                .inner
                .workers
                .channel(&info.address, Traffic::Actors)?,
            address: info.address.as_str().into(),
            restarts: info.restarts,
        };
        Ok(Self {
            id: info.actor_id,
            id_hex: info.actor_id.hex().into(),
            name: info.name.as_str().into(),
            max_task_retries,
            route: Arc::new(Mutex::new(Some(route))),
            client,
        })
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// The actor's name (empty when anonymous).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn cached(&self) -> Option<Route> {
        self.route.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_route(&self, r: Option<Route>) {
        *self.route.lock().unwrap_or_else(|p| p.into_inner()) = r;
    }

    /// Ask the head where the actor lives; after a failure at `stale`, wait until the head has
    /// moved or restarted it (or declared it dead), up to `deadline`.
    async fn resolve(&self, stale: Option<&Route>, deadline: Instant) -> Result<Route> {
        loop {
            let info = self.client.await_actor(&self.id_hex).await?;
            let moved =
                stale.is_none_or(|s| *s.address != *info.address || info.restarts > s.restarts);
            if moved {
                let route = Route {
                    channel: self
                        .client
                        .inner
                        .workers
                        .channel(&info.address, Traffic::Actors)?,
                    address: info.address.as_str().into(),
                    restarts: info.restarts,
                };
                self.set_route(Some(route.clone()));
                return Ok(route);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "actor {} is unreachable at {} and the head has not restarted it",
                    self.id, info.address
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Call `method` with `args` (inline bytes) and return its result. Calls from one caller
    /// run in order. An application error is [`Error::ActorMethod`].
    pub async fn call(&self, method: &str, args: Vec<Bytes>) -> Result<Bytes> {
        check_name("method name", method)?;
        let args: Vec<Vec<u8>> = args.into_iter().map(Vec::from).collect();
        let deadline = Instant::now() + self.client.inner.config.actor_start_timeout;
        let mut retries_left = self.max_task_retries;
        let mut stale: Option<Route> = None;
        let mut not_found_seen = false;
        loop {
            let route = match self.cached() {
                Some(r) => r,
                None => self.resolve(stale.as_ref(), deadline).await?,
            };
            let req = pb::CallActorRequest {
                actor_id: self.id_hex.to_string(),
                method: method.to_string(),
                args: args.clone(),
            };
            let mut stub = self.client.inner.workers.stub_for(route.channel.clone());
            let sent = async move { stub.call_actor(req).await };
            let failed = match self
                .client
                .inner
                .breakers
                .call_rpc(&route.address, sent)
                .await
            {
                Ok(r) => {
                    return match r.into_inner().result {
                        Some(call_actor_reply::Result::Value(v)) => Ok(Bytes::from(v)),
                        Some(call_actor_reply::Result::Error(e)) => Err(Error::ActorMethod(e)),
                        None => Err(Error::Protocol("CallActor reply has no result".into())),
                    };
                }
                Err(f) => f,
            };
            let e = failed.error;
            match e.code() {
                // A stale route (the actor moved): look it up once more.
                Some(Code::NotFound) if !not_found_seen => {
                    not_found_seen = true;
                    self.set_route(None);
                    stale = None;
                }
                Some(code) if net::retriable(code) => {
                    self.set_route(None);
                    if !failed.undelivered {
                        if retries_left == 0 {
                            return Err(e);
                        }
                        retries_left = retries_left.saturating_sub(1).max(-1);
                    }
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    tracing::info!(actor = %self.id, address = %route.address, error = %e, "actor unreachable; waiting for the head to restart it");
                    stale = Some(route);
                }
                code => {
                    if code == Some(Code::NotFound) {
                        self.set_route(None);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Kill the actor (its name becomes free).
    pub async fn kill(&self) -> Result<()> {
        self.client.kill_actor(&self.id_hex).await.map(|_| ())
    }
}

impl Client {
    /// Creates an actor of `class` and waits (up to `actor_start_timeout`) until it is alive.
    pub async fn create_actor(
        &self,
        class: &str,
        args: Vec<Arg>,
        options: ActorOptions,
    ) -> Result<ActorHandle> {
        check_name("actor class", class)?;
        if let Some(name) = &options.name {
            check_name("actor name", name)?;
        }
        check_inline(&args)?;
        let max_task_retries = options.max_task_retries;
        let req = pb::CreateActorRequest {
            request_id: request_id(),
            class: class.to_string(),
            args: args.into_iter().map(convert::arg_to_pb).collect(),
            options: Some(convert::actor_options_to_pb(options)),
        };
        let reply = head_call!(self.inner.head, create_actor, req).await?;
        let info = self.await_actor(&reply.actor_id).await?;
        ActorHandle::new(self.clone(), &info, max_task_retries)
    }

    /// A handle to the actor with this name (or hex id), waiting until it is alive.
    pub async fn get_actor(&self, name_or_id: &str) -> Result<ActorHandle> {
        let info = self.await_actor(name_or_id).await?;
        ActorHandle::new(self.clone(), &info, 0)
    }

    /// What the head knows about one actor now (no waiting).
    pub async fn actor_info(&self, name_or_id: &str) -> Result<ActorInfo> {
        self.get_actor_info(name_or_id, Duration::ZERO).await
    }

    /// Every actor the head knows.
    pub async fn list_actors(&self) -> Result<Vec<ActorInfo>> {
        let reply = head_call!(self.inner.head, list_actors, pb::ListActorsRequest {}).await?;
        reply
            .actors
            .into_iter()
            .map(convert::actor_info_from_pb)
            .collect()
    }

    /// Kills the actor with this name (or hex id); returns its id.
    pub async fn kill_actor(&self, name_or_id: &str) -> Result<ActorId> {
        let req = pb::KillActorRequest {
            request_id: request_id(),
            name_or_id: name_or_id.to_string(),
        };
        let reply = head_call!(self.inner.head, kill_actor, req).await?;
        convert::actor_id(&reply.actor_id)
    }

    async fn get_actor_info(&self, name_or_id: &str, timeout: Duration) -> Result<ActorInfo> {
        let req = pb::GetActorRequest {
            name_or_id: name_or_id.to_string(),
            timeout_ms: wait_ms(timeout),
        };
        convert::actor_info_from_pb(head_call!(self.inner.head, get_actor, req).await?)
    }

    /// Waits until the actor is alive; dead gives [`Error::ActorDead`], too slow [`Error::Timeout`].
    pub(crate) async fn await_actor(&self, name_or_id: &str) -> Result<ActorInfo> {
        let timeout = self.inner.config.actor_start_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let info = self.get_actor_info(name_or_id, left).await?;
            match info.state {
                ActorState::Alive if !info.address.is_empty() => return Ok(info),
                ActorState::Dead => {
                    let reason = if info.error.is_empty() {
                        "killed".to_string()
                    } else {
                        info.error
                    };
                    return Err(Error::ActorDead {
                        actor: name_or_id.to_string(),
                        reason,
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "actor {name_or_id} is still {:?} after {:.0} s",
                    info.state,
                    timeout.as_secs_f64()
                )));
            }
            if left.is_zero() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
