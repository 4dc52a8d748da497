//! One endpoint builder per kind of traffic. Every channel in xnai is built here, so timeouts,
//! keepalive and HTTP/2 windows are chosen once per kind instead of at each call site: control
//! calls to heads, head-to-head Raft traffic, object streams and calls that run work on a worker.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::limits::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};

/// The kinds of traffic between xnai nodes; each has its own connection settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Traffic {
    /// Calls to a head's `Head` or `WorkerRegistry` service (SDK, workers, chaos, probes).
    /// Keepalive fails calls to a paused or cut-off head in about three seconds, so callers
    /// move on to another head.
    Control,
    /// Head-to-head Raft messages and queries. Short connect timeout; no keepalive (Raft's own
    /// heartbeats and the sender's per-call timeouts find a silent peer).
    Peer,
    /// `FetchObject` / `PutObject` streams and same-host arena calls: large HTTP/2 windows and
    /// frames so a stream is not throttled by flow control, and keepalive.
    Objects,
    /// Calls that run work on a worker: task dispatch, actor start/stop and actor calls.
    Actors,
}

/// Interval of HTTP/2 keepalive pings (also while idle) on the kinds that use them.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a keepalive ping may go unanswered before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

impl Traffic {
    /// How long opening the TCP connection may take.
    pub const fn connect_timeout(self) -> Duration {
        match self {
            Traffic::Peer => Duration::from_secs(1),
            Traffic::Control | Traffic::Objects | Traffic::Actors => Duration::from_secs(3),
        }
    }

    const fn keepalive(self) -> bool {
        !matches!(self, Traffic::Peer)
    }

    const fn large_windows(self) -> bool {
        matches!(self, Traffic::Objects)
    }
}

/// An address that is not a valid URI.
#[derive(Debug, thiserror::Error)]
#[error("bad address {address:?}: {reason}")]
pub struct BadAddress {
    /// The address as given.
    pub address: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `host:port` as an `http://` URI; a full URI is kept as it is.
pub fn uri(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// The endpoint for `address` (`host:port` or a URI) with the settings of `traffic`. A caller
/// with its own connect timeout (the SDK's `ClientConfig`) may override it on the result.
pub fn endpoint(address: &str, traffic: Traffic) -> Result<Endpoint, BadAddress> {
    let ep = Endpoint::from_shared(uri(address)).map_err(|e| BadAddress {
        address: address.to_string(),
        reason: e.to_string(),
    })?;
    let mut ep = ep
        .connect_timeout(traffic.connect_timeout())
        .tcp_nodelay(true);
    if traffic.keepalive() {
        ep = ep
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
    }
    if traffic.large_windows() {
        ep = ep
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME);
    }
    Ok(ep)
}

/// A lazily connecting channel to `address` for `traffic` (it reconnects by itself, so it
/// stays valid across restarts of the node at that address).
pub fn lazy_channel(address: &str, traffic: Traffic) -> Result<Channel, BadAddress> {
    Ok(endpoint(address, traffic)?.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_uris_and_bad_ones_are_named() {
        assert_eq!(uri("127.0.0.1:7000"), "http://127.0.0.1:7000");
        assert_eq!(uri("https://h:1"), "https://h:1");
        let ep = endpoint("127.0.0.1:7000", Traffic::Objects).unwrap();
        assert_eq!(ep.uri().port_u16(), Some(7000));
        let e = endpoint("bad address with spaces", Traffic::Control).unwrap_err();
        assert!(e.to_string().contains("bad address"), "{e}");
        assert!(Traffic::Peer.connect_timeout() < Traffic::Control.connect_timeout());
    }
}
