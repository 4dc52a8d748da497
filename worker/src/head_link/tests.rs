//! Head link tests against the fake head, on paused tokio time: registration (skipping a dead
//! head address), heartbeats at the interval the head names (or the default lease's),
//! re-registration on request, object and eviction reports.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::fake_head::FakeHead;
use super::heartbeat::{HeartbeatStatus, forward_evictions, heartbeat_loop};
use super::*;

fn registration() -> Registration {
    Registration {
        address: "127.0.0.1:1".into(),
        pid: 7,
        cpus: 2.0,
        memory_bytes: 1 << 30,
        labels: HashMap::from([("zone".to_string(), "eu".to_string())]),
        arena_capacity: 1 << 20,
        functions: vec!["echo".into()],
        actor_classes: vec!["counter".into()],
    }
}

/// On paused time the clock jumps to the next timer whenever the runtime waits, including on
/// the fake head's real socket; this 1 ms ticker keeps those jumps short, so call timeouts
/// (seconds) never fire while a reply is merely in flight. Abort it at the end.
fn short_clock_jumps() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

/// Poll `f` every 10 ms of (paused) time until it holds, for at most 5 s of it.
async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test(start_paused = true)]
async fn registers_heartbeats_reregisters_and_reports() {
    let ticker = short_clock_jumps();
    let head = FakeHead::default();
    let addr = head.serve("tok").await;
    let inject = TokenInject::new("tok").unwrap();
    // The first address refuses connections; the link must move on to the second.
    let link = Arc::new(HeadLink::new(
        vec!["127.0.0.1:1".into(), addr],
        inject,
        registration(),
    ));
    let first = link.register(0).await;
    assert_eq!(link.worker_id(), Some(first));
    {
        let seen = head.seen.lock().unwrap();
        let r = &seen.registrations[0];
        assert_eq!((r.pid, r.arena_capacity), (7, 1 << 20));
        assert_eq!(r.resources.as_ref().unwrap().labels["zone"], "eu");
        assert_eq!(r.request_id.len(), 32);
    }
    let status = Box::new(|| HeartbeatStatus {
        running_tasks: 1,
        arena_used: 5,
        arena_capacity: 10,
        pressure: "ok",
        spill: crate::arena::SpillUsage {
            spills: 3,
            ..Default::default()
        },
    });
    // Records how many registrations the head had seen each time the worker forgot its objects.
    let forgotten: Arc<std::sync::Mutex<Vec<usize>>> = Arc::default();
    let forget = {
        let (forgotten, head) = (Arc::clone(&forgotten), head.clone());
        Box::new(move || {
            let registrations = head.seen.lock().unwrap().registrations.len();
            forgotten.lock().unwrap().push(registrations);
        })
    };
    let hb = tokio::spawn(heartbeat_loop(Arc::clone(&link), status, forget));
    wait_until(|| head.seen.lock().unwrap().heartbeats.len() >= 2).await;
    assert_eq!(
        head.seen.lock().unwrap().heartbeats[0]
            .spill
            .as_ref()
            .map(|s| s.spills),
        Some(3),
        "spill totals ride on heartbeats"
    );
    assert_eq!(
        head.seen.lock().unwrap().heartbeats[0].worker_id,
        first.hex()
    );

    head.reregister.store(true, Ordering::SeqCst);
    wait_until(|| head.seen.lock().unwrap().registrations.len() == 2).await;
    wait_until(|| link.worker_id().is_some_and(|id| id != first)).await;
    let seen_ids: Vec<String> = head
        .seen
        .lock()
        .unwrap()
        .registrations
        .iter()
        .map(|r| r.request_id.clone())
        .collect();
    assert_ne!(
        seen_ids[0], seen_ids[1],
        "a re-registration is a new request"
    );
    assert_eq!(
        *forgotten.lock().unwrap(),
        vec![1],
        "the old registration's objects are dropped once, before registering again"
    );

    let id = ObjectId::random();
    link.report_object(id, StoredMeta { size: 3, crc32: 4 }, ReportedCopy::Put)
        .await
        .unwrap();
    let (tx, rx) = crate::arena::eviction_notices();
    let fwd = tokio::spawn(forward_evictions(Arc::clone(&link), rx));
    tx.note([id]);
    wait_until(|| !head.seen.lock().unwrap().removed.is_empty()).await;
    {
        let seen = head.seen.lock().unwrap();
        assert_eq!(seen.objects[0].object_id, id.hex());
        assert_eq!(seen.objects[0].kind, PbCopyKind::Put as i32);
        assert_eq!(seen.removed[0].reason, "evicted: arena full");
    }
    hb.abort();
    fwd.abort();
    ticker.abort();
}

#[tokio::test(start_paused = true)]
async fn heartbeats_go_out_at_the_interval_the_head_names_else_the_default() {
    let ticker = short_clock_jumps();
    for (named_ms, expected) in [
        (80, Duration::from_millis(80)),
        (0, Timings::default().heartbeat_interval()),
    ] {
        tracing::info!(
            named_ms,
            "--- phase: the head names an interval at registration"
        );
        let head = FakeHead::default();
        head.interval_ms.store(named_ms, Ordering::SeqCst);
        let addr = head.serve("tok").await;
        let inject = TokenInject::new("tok").unwrap();
        let link = Arc::new(HeadLink::new(vec![addr], inject, registration()));
        link.register(0).await;
        let status = Box::new(|| HeartbeatStatus {
            running_tasks: 0,
            arena_used: 0,
            arena_capacity: 10,
            pressure: "ok",
            spill: Default::default(),
        });
        let hb = tokio::spawn(heartbeat_loop(Arc::clone(&link), status, Box::new(|| {})));

        tracing::info!("--- phase: heartbeats arrive that far apart");
        wait_until(|| head.seen.lock().unwrap().heartbeat_times.len() >= 4).await;
        hb.abort();
        let times = head.seen.lock().unwrap().heartbeat_times.clone();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= expected && gap < expected + Duration::from_millis(50),
                "heartbeats {gap:?} apart, expected {expected:?}"
            );
        }
    }
    ticker.abort();
}

#[tokio::test(start_paused = true)]
async fn reports_fail_clearly_without_a_registration() {
    let mut link = HeadLink::new(
        vec!["127.0.0.1:1".into()],
        TokenInject::new("t").unwrap(),
        registration(),
    );
    link.session_wait = Duration::from_millis(50);
    let e = link
        .report_object(
            ObjectId::random(),
            StoredMeta { size: 0, crc32: 0 },
            ReportedCopy::Put,
        )
        .await;
    assert_eq!(
        e.unwrap_err().to_string(),
        "head: reporting: not registered with any head"
    );
}
