//! Whether a failed call certainly never reached its server, so resending it cannot run it
//! twice (what at-most-once actor calls hang on). Decided from the status code and the error
//! chain tonic keeps as the status's source, never from message text: a connection that was
//! never established (tonic's `ConnectError`: refused, unreachable, DNS, connect timeout), or a
//! request hyper dropped before sending it (its `Canceled` kind: "connection closed" or
//! "connection was not ready", with the request handed back unsent).

use std::error::Error as StdError;

use tonic::{Code, Status};

/// True when the call that failed with `status` certainly never reached its server. A status
/// the server itself sent (UNAVAILABLE "not the leader", a dropped stream) is false: the
/// server may have acted on it.
pub fn never_reached(status: &Status) -> bool {
    if !matches!(
        status.code(),
        Code::Unavailable | Code::Cancelled | Code::Unknown
    ) {
        return false;
    }
    let mut cur: Option<&(dyn StdError + 'static)> = StdError::source(status);
    while let Some(e) = cur {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_canceled()
        {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Traffic, endpoint, leader_hint, not_leader, retriable};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    async fn check(address: &str) -> Status {
        let channel = endpoint(address, Traffic::Control).unwrap().connect_lazy();
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .expect_err("the call must fail")
    }

    #[tokio::test]
    async fn refused_connection_never_reached_the_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let s = check(&address).await;
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert!(never_reached(&s), "a refused connection: {s:?}");
        assert!(retriable(s.code()));
    }

    #[tokio::test]
    async fn server_side_unavailable_may_have_reached_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let refuse = |_req: tonic::Request<()>| -> Result<tonic::Request<()>, Status> {
            Err(not_leader("not the leader", Some("127.0.0.1:1")))
        };
        let svc = tonic::service::interceptor::InterceptedService::new(health, refuse);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(incoming),
        );
        let s = check(&address).await;
        server.abort();
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert!(!never_reached(&s), "the server answered: {s:?}");
        assert_eq!(
            leader_hint(&s),
            Some("127.0.0.1:1"),
            "the hint crosses the wire"
        );
        assert!(!never_reached(&Status::unavailable("")));
        assert!(!never_reached(&Status::not_found("x")));
    }
}
