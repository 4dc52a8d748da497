//! In-process tests of the shared server builder: one connection opening thousands of
//! streams gets at most [`MAX_CONCURRENT_STREAMS`] at once (the rest wait, then run), while
//! another connection keeps being served; and [`NodeHealth`] starts NOT_SERVING per name.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::health::{NodeHealth, OVERALL, WORKER_SERVICE, probe};
use super::limits::{MAX_CONCURRENT_STREAMS, ServerRole, incoming, server};

/// Streams one test connection opens: several times the limit.
const STREAMS: usize = 4 * MAX_CONCURRENT_STREAMS as usize;

async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A node-like server (health only) built by [`server`]; returns its address.
async fn start(role: ServerRole) -> (String, NodeHealth) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (health, svc) = NodeHealth::new(&[WORKER_SERVICE]).await;
    tokio::spawn(
        server(role)
            .add_service(svc)
            .serve_with_incoming(incoming(listener)),
    );
    (addr, health)
}

async fn client(addr: &str) -> HealthClient<tonic::transport::Channel> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_gets_at_most_the_stream_limit_and_others_are_served() {
    let (addr, health) = start(ServerRole::Worker).await;
    health.set(&[OVERALL], true, "test").await;

    tracing::info!("--- phase: one connection opens {STREAMS} long-lived streams");
    let greedy = client(&addr).await;
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (release, released) = watch::channel(false);
    for _ in 0..STREAMS {
        let (mut c, open, peak, done, mut released) = (
            greedy.clone(),
            open.clone(),
            peak.clone(),
            done.clone(),
            released.clone(),
        );
        tokio::spawn(async move {
            let mut stream = c
                .watch(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .expect("a stream over the limit waits; it is not refused")
                .into_inner();
            let first = stream.message().await.expect("first status");
            assert!(first.is_some());
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let _ = released.wait_for(|r| *r).await;
            open.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    let limit = MAX_CONCURRENT_STREAMS as usize;
    wait_for("the limit of streams open", Duration::from_secs(60), || {
        open.load(Ordering::SeqCst) >= limit
    })
    .await;

    tracing::info!("--- phase: another client is served meanwhile");
    for _ in 0..20 {
        assert!(
            probe(&addr, "", Duration::from_secs(5)).await.unwrap(),
            "another connection is still served"
        );
    }
    let mut other = client(&addr).await;
    let reply = other
        .check(HealthCheckRequest {
            service: WORKER_SERVICE.into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().status, 2, "worker service NOT_SERVING");
    assert_eq!(
        peak.load(Ordering::SeqCst),
        limit,
        "no more than the limit open on one connection"
    );

    tracing::info!("--- phase: released streams let the waiting ones run");
    release.send_replace(true);
    wait_for("every stream served", Duration::from_secs(60), || {
        done.load(Ordering::SeqCst) == STREAMS
    })
    .await;
    assert!(peak.load(Ordering::SeqCst) <= limit);
}

#[tokio::test]
async fn node_health_starts_not_serving_and_follows_set() {
    let (addr, health) = start(ServerRole::Head).await;
    let t = Duration::from_secs(5);
    assert!(!probe(&addr, "", t).await.unwrap());
    assert!(!probe(&addr, WORKER_SERVICE, t).await.unwrap());
    let unknown = probe(&addr, "xnai.v1.Nope", t).await.unwrap_err();
    assert!(unknown.to_string().contains("NotFound"), "{unknown}");
    health.set(&[OVERALL, WORKER_SERVICE], true, "ready").await;
    assert!(probe(&addr, "", t).await.unwrap());
    assert!(probe(&addr, WORKER_SERVICE, t).await.unwrap());
    assert!(health.is_serving(WORKER_SERVICE));
    health.set(&[WORKER_SERVICE], false, "lost").await;
    assert!(probe(&addr, "", t).await.unwrap());
    assert!(!probe(&addr, WORKER_SERVICE, t).await.unwrap());
}
