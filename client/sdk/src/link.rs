//! Connections: [`HeadLink`], the single path every head call takes, and [`WorkerPool`], one
//! cached channel per worker address. Every channel carries the cluster token and the wire's
//! message size limits. `HeadLink` follows the Raft leader by itself: a head that does not lead
//! answers UNAVAILABLE with the leader hint (`xnai_proto::net::leader`); the link goes there,
//! else to the next head, with backoff, until [`FOLLOW_DEADLINE`] passes, so calls ride through
//! an election. Writes carry request ids, so a retried write applies once. Endpoints, the
//! retriable codes, the hint and the backoff all come from `xnai_proto::net`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tonic::codegen::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use xnai_proto::auth::TokenInject;
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::net::{self, Backoff, Traffic};
use xnai_proto::pb::head_client::HeadClient;
use xnai_proto::pb::local_arena_client::LocalArenaClient;
use xnai_proto::pb::worker_client::WorkerClient;

use super::error::{Error, Result};

/// A Head stub with the token interceptor.
pub(crate) type HeadStub = HeadClient<InterceptedService<Channel, TokenInject>>;
/// A Worker stub with the token interceptor.
pub(crate) type WorkerStub = WorkerClient<InterceptedService<Channel, TokenInject>>;
/// A LocalArena stub (same-host shared memory) with the token interceptor.
pub(crate) type LocalArenaStub = LocalArenaClient<InterceptedService<Channel, TokenInject>>;

/// How long a head call keeps looking for the leader before it gives up on UNAVAILABLE.
pub(crate) const FOLLOW_DEADLINE: Duration = Duration::from_secs(15);
/// Pause between rounds over the heads while looking for the leader: 20 ms doubling to
/// 200 ms; an election takes about a second, and asking three heads a few times a second
/// costs nothing.
const FOLLOW_BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));

/// The toolkit's endpoint for `traffic` to `address`, with the client's connect timeout.
pub(crate) fn endpoint(
    address: &str,
    traffic: Traffic,
    connect_timeout: Duration,
) -> Result<Endpoint> {
    let ep = net::endpoint(address, traffic).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(ep.connect_timeout(connect_timeout))
}

/// The connection to the head replicas. Thread-safe; clone-free (shared behind the client's Arc).
pub(crate) struct HeadLink {
    addresses: Vec<String>,
    channels: Vec<Channel>,
    /// Index of the head that answered last; calls start there.
    current: AtomicUsize,
    token: TokenInject,
}

impl HeadLink {
    /// Connects to the first head that accepts a connection, trying them in order.
    pub(crate) async fn connect(
        addresses: &[String],
        token: TokenInject,
        connect_timeout: Duration,
    ) -> Result<Self> {
        if addresses.is_empty() {
            return Err(Error::InvalidArgument("no head address given".into()));
        }
        let mut channels = Vec::with_capacity(addresses.len());
        for a in addresses {
            channels.push(endpoint(a, Traffic::Control, connect_timeout)?.connect_lazy());
        }
        let mut last = String::new();
        for (i, a) in addresses.iter().enumerate() {
            match endpoint(a, Traffic::Control, connect_timeout)?
                .connect()
                .await
            {
                Ok(ch) => {
                    channels[i] = ch;
                    return Ok(Self {
                        addresses: addresses.to_vec(),
                        channels,
                        current: AtomicUsize::new(i),
                        token,
                    });
                }
                Err(e) => last = format!("{a}: {}", error_chain(&e)),
            }
        }
        Err(Error::NoHead {
            heads: addresses.join(","),
            reason: last,
        })
    }

    /// The configured head addresses.
    pub(crate) fn addresses(&self) -> &[String] {
        &self.addresses
    }

    fn stub(&self, i: usize) -> HeadStub {
        HeadClient::with_interceptor(self.channels[i].clone(), self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The index of `address` among the configured heads.
    fn index_of(&self, address: &str) -> Option<usize> {
        self.addresses.iter().position(|a| a == address)
    }

    /// Runs one head call, starting at the head that answered last. On UNAVAILABLE it goes to
    /// the leader the head named (`xnai-leader`), else to the next head, backing off after each
    /// full round, until [`FOLLOW_DEADLINE`]. `f` is called once per attempt with a fresh stub;
    /// the request it sends (and its request_id) must be the same each time.
    pub(crate) async fn call<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(HeadStub) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let n = self.channels.len();
        let deadline = Instant::now() + FOLLOW_DEADLINE;
        let mut i = self.current.load(Ordering::Relaxed) % n;
        let mut misses = 0usize;
        let mut backoff = FOLLOW_BACKOFF;
        loop {
            match f(self.stub(i)).await {
                Ok(r) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(r.into_inner());
                }
                Err(s) if net::retriable_status(&s) => {
                    let hint = net::leader_hint(&s)
                        .and_then(|a| self.index_of(a))
                        .filter(|&j| j != i);
                    if Instant::now() >= deadline {
                        return Err(Error::NoHead {
                            heads: self.addresses.join(","),
                            reason: format!("{}: {}", self.addresses[i], Error::from(s)),
                        });
                    }
                    i = hint.unwrap_or((i + 1) % n);
                    misses += 1;
                }
                Err(s) => return Err(s.into()),
            }
            if misses.is_multiple_of(n) {
                backoff.wait_until(deadline).await;
            }
        }
    }
}

/// Cached channels to workers, keyed by `host:port` and kind of traffic (object streams and
/// actor calls get their own connection settings). Channels connect lazily and reconnect by
/// themselves, so an entry stays valid across worker restarts on the same address.
pub(crate) struct WorkerPool {
    channels: Mutex<HashMap<(String, Traffic), Channel>>,
    token: TokenInject,
    connect_timeout: Duration,
}

impl WorkerPool {
    pub(crate) fn new(token: TokenInject, connect_timeout: Duration) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            token,
            connect_timeout,
        }
    }

    /// The channel for `traffic` to `address`, created on first use.
    pub(crate) fn channel(&self, address: &str, traffic: Traffic) -> Result<Channel> {
        let key = (address.to_string(), traffic);
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = map.get(&key) {
            return Ok(ch.clone());
        }
        let ch = endpoint(address, traffic, self.connect_timeout)?.connect_lazy();
        map.insert(key, ch.clone());
        Ok(ch)
    }

    /// A Worker stub over `channel` with the token and size limits.
    pub(crate) fn stub_for(&self, channel: Channel) -> WorkerStub {
        WorkerClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A Worker stub for object streams to `address`.
    pub(crate) fn stub(&self, address: &str) -> Result<WorkerStub> {
        Ok(self.stub_for(self.channel(address, Traffic::Objects)?))
    }

    /// A Worker stub for actor calls to `address`.
    pub(crate) fn actor_stub(&self, address: &str) -> Result<WorkerStub> {
        Ok(self.stub_for(self.channel(address, Traffic::Actors)?))
    }

    /// A LocalArena stub for `address` (same channel as its Worker stub).
    pub(crate) fn local_stub(&self, address: &str) -> Result<LocalArenaStub> {
        Ok(LocalArenaClient::with_interceptor(
            self.channel(address, Traffic::Objects)?,
            self.token.clone(),
        )
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `head_call!(link, method, request)`: one Head RPC through [`HeadLink::call`], cloning the
/// request (with its request_id) for each attempt.
macro_rules! head_call {
    ($link:expr, $method:ident, $req:expr) => {{
        let req = $req;
        $link.call(move |mut h| {
            let r = req.clone();
            async move { h.$method(r).await }
        })
    }};
}
pub(crate) use head_call;
