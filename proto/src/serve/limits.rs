//! The one tonic server builder every xnai node uses (head: client, registry and peer services
//! on one port; worker: `Worker` and `LocalArena`), with the hard limits that keep one client
//! from taking a node down: concurrent HTTP/2 streams per connection, a request timeout, HTTP/2
//! keepalive pings that close dead connections, TCP keepalive and a header size cap.
//! ARCHITECTURE.md ("Hard limits") lists the values.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::limits::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};

/// Most HTTP/2 streams (calls) one connection may have open at once on any xnai server
/// (SETTINGS_MAX_CONCURRENT_STREAMS). A conforming client queues the extra calls until one
/// ends; a client that opens more anyway gets them refused (REFUSED_STREAM). Other
/// connections are not affected.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// Longest a call to a head may take before the head cancels it (CANCELLED, "Timeout
/// expired"): above the longest wait a head grants (`LocateObject`/`WaitObjects`/`GetActor`
/// cap their `timeout_ms` at 10 minutes). A client's shorter `grpc-timeout` wins.
pub const HEAD_REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Longest a call to a worker may take before the worker cancels it: `ExecuteTask` and
/// `CallActor` last as long as the task or actor method they run, and a `PutObject` upload as
/// long as its stream, so this is a backstop against calls that never end, not a latency
/// target. Streamed replies (`FetchObject`, `CallActorStream`) are bounded only until their
/// first message.
pub const WORKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Interval of the HTTP/2 PING a server sends on each connection (idle or not).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// A connection whose peer does not answer a PING within this is closed, with its streams
/// (a client that vanished without a FIN no longer holds streams or reservations).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Idle time before the kernel starts TCP keepalive probes on an accepted connection.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Largest header block a server accepts on one call (the token is ~70 bytes).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Which node a server belongs to: it picks the request timeout and the flow-control windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    /// A head: small control messages, default HTTP/2 windows, [`HEAD_REQUEST_TIMEOUT`].
    Head,
    /// A worker: object streams with the large windows and frames of [`crate::limits`],
    /// [`WORKER_REQUEST_TIMEOUT`].
    Worker,
}

impl ServerRole {
    /// The request timeout servers of this role apply.
    pub fn request_timeout(self) -> Duration {
        match self {
            ServerRole::Head => HEAD_REQUEST_TIMEOUT,
            ServerRole::Worker => WORKER_REQUEST_TIMEOUT,
        }
    }
}

/// A tonic server builder with every hard limit set for `role`. Add the services, then serve
/// with [`incoming`].
pub fn server(role: ServerRole) -> Server {
    let builder = Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .timeout(role.request_timeout())
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .tcp_nodelay(true);
    match role {
        ServerRole::Head => builder,
        ServerRole::Worker => builder
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME),
    }
}

/// The accepted connections of `listener`, with TCP_NODELAY and TCP keepalive set on each
/// (tonic ignores its own TCP settings when serving an incoming stream): without NODELAY,
/// Nagle's algorithm holds small replies back for a delayed ACK (~40 ms per call).
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
}
