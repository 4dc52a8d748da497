//! Helpers shared by the Raft tests: a tokio runtime, an SDK client, raw gRPC stubs for one
//! head's Head and Peer services, a health probe and a process-exit check.

use std::time::Duration;

use anyhow::Result;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::pb::head_client::HeadClient;
use xnai_proto::pb::peer_client::PeerClient;

/// A multi-thread runtime for the SDK.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn channel(address: &str) -> Result<Channel> {
    Ok(Channel::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?)
}

/// A Head stub bound to one head only (no leader following).
pub async fn head_stub(
    address: &str,
    token: &str,
) -> Result<HeadClient<InterceptedService<Channel, TokenInject>>> {
    Ok(HeadClient::with_interceptor(
        channel(address).await?,
        TokenInject::new(token)?,
    ))
}

/// A Peer stub for one head, with the token (or without: `token` empty).
pub async fn peer_stub(
    address: &str,
    token: &str,
) -> Result<PeerClient<InterceptedService<Channel, TokenInject>>> {
    let inject = if token.is_empty() {
        TokenInject::new("wrong-token")?
    } else {
        TokenInject::new(token)?
    };
    Ok(PeerClient::with_interceptor(
        channel(address).await?,
        inject,
    ))
}

/// The Raft view one head reports about itself.
pub async fn peer_status(address: &str, token: &str) -> Result<xnai_proto::pb::PeerStatusReply> {
    let mut p = peer_stub(address, token).await?;
    Ok(p.status(xnai_proto::pb::PeerStatusRequest {})
        .await?
        .into_inner())
}

/// Whether `address` answers its standard health check with SERVING for `service` ("" for the
/// whole node); `Ok(false)` for NOT_SERVING, `Err` when it does not answer.
pub async fn serving(address: &str, service: &str) -> Result<bool> {
    Ok(xnai_proto::serve::probe(address, service, Duration::from_secs(2)).await?)
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state is the first field after the ")" that closes the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}
