//! Connections: [`HeadLink`], the single path every head call takes, and [`WorkerPool`], one
//! cached channel per worker address. Every channel carries the cluster token and the wire's
//! message size limits. `HeadLink` follows the Raft leader by itself: a head that does not lead
//! answers UNAVAILABLE with the leader in the `xnai-leader` metadata; the link goes there, else
//! to the next head, with backoff, until [`FOLLOW_DEADLINE`] passes, so calls ride through an
//! election. Writes carry request ids, so a retried write applies once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tonic::codegen::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use xnai_proto::auth::TokenInject;
use xnai_proto::limits::{CONNECTION_WINDOW, MAX_FRAME, MAX_MESSAGE_BYTES, STREAM_WINDOW};
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
/// Longest pause between rounds over the heads while looking for the leader: an election takes
/// about a second, and asking three heads a few times a second costs nothing.
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// Response metadata naming the leader (set by heads that do not lead).
const LEADER_METADATA: &str = "xnai-leader";
/// HTTP/2 keepalive: a head that stopped answering (paused, partitioned) fails calls in
/// seconds instead of holding them forever.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds an endpoint for `host:port` (or a full `http://` URI).
pub(crate) fn endpoint(address: &str, connect_timeout: Duration) -> Result<Endpoint> {
    let uri = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let ep = Endpoint::from_shared(uri)
        .map_err(|e| Error::InvalidArgument(format!("bad address {address:?}: {e}")))?;
    Ok(ep
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME))
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
            channels.push(endpoint(a, connect_timeout)?.connect_lazy());
        }
        let mut last = String::new();
        for (i, a) in addresses.iter().enumerate() {
            match endpoint(a, connect_timeout)?.connect().await {
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
        let mut backoff = Duration::from_millis(20);
        loop {
            match f(self.stub(i)).await {
                Ok(r) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(r.into_inner());
                }
                Err(s) if head_unreachable(&s) => {
                    let hint = s
                        .metadata()
                        .get(LEADER_METADATA)
                        .and_then(|v| v.to_str().ok())
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
                tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Whether a failed head call may be retried on another head: UNAVAILABLE (not the leader, or
/// no connection), and the transport errors a connection dropped mid-call gives (a killed
/// head). Heads never answer UNKNOWN or CANCELLED themselves, and writes carry request ids.
fn head_unreachable(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// Cached channels to workers, keyed by `host:port`. Channels connect lazily and reconnect by
/// themselves, so an entry stays valid across worker restarts on the same address.
pub(crate) struct WorkerPool {
    channels: Mutex<HashMap<String, Channel>>,
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

    /// The channel to `address`, created on first use.
    pub(crate) fn channel(&self, address: &str) -> Result<Channel> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = map.get(address) {
            return Ok(ch.clone());
        }
        let ch = endpoint(address, self.connect_timeout)?.connect_lazy();
        map.insert(address.to_string(), ch.clone());
        Ok(ch)
    }

    /// A Worker stub over `channel` with the token and size limits.
    pub(crate) fn stub_for(&self, channel: Channel) -> WorkerStub {
        WorkerClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A Worker stub for `address`.
    pub(crate) fn stub(&self, address: &str) -> Result<WorkerStub> {
        Ok(self.stub_for(self.channel(address)?))
    }

    /// A LocalArena stub for `address` (same channel as its Worker stub).
    pub(crate) fn local_stub(&self, address: &str) -> Result<LocalArenaStub> {
        Ok(
            LocalArenaClient::with_interceptor(self.channel(address)?, self.token.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
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
