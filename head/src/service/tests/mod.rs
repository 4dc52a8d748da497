//! In-process end-to-end test of the head: `run` serves on a free port, a fake `Worker` gRPC
//! server (behind the token check) executes tasks and hosts actors, and generated clients drive
//! the Head and WorkerRegistry APIs through registration, tasks, actors, puts and errors.

use std::path::Path;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use xnai_proto::auth::TokenInject;
use xnai_proto::ids::ObjectId;
use xnai_proto::pb;

use crate::{HeadConfig, run};

mod fake_worker;

use fake_worker::start_fake_worker;

pub(super) const TOKEN: &str = "test-token";

async fn wait_addr(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s.trim().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("head never wrote {}", path.display());
}

type Authed = InterceptedService<Channel, TokenInject>;

#[tokio::test]
async fn head_serves_tasks_actors_and_objects_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker_addr = start_fake_worker().await;
    let config = HeadConfig {
        id: 1,
        listen: "127.0.0.1:0".into(),
        listen_fd: None,
        data_dir: dir.path().join("data"),
        token: TOKEN.into(),
        addr_file: Some(dir.path().join("addr")),
        max_pending_tasks: 100,
        worker_lease: std::time::Duration::from_millis(1500),
        raft: crate::raft::RaftConfig::single(1),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let head = tokio::spawn(run(config, async move {
        let _ = stopped.await;
    }));
    let addr = wait_addr(&dir.path().join("addr")).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let inject = TokenInject::new(TOKEN).expect("token");
    let mut client: pb::head_client::HeadClient<Authed> =
        pb::head_client::HeadClient::with_interceptor(channel.clone(), inject.clone());
    let mut registry =
        pb::worker_registry_client::WorkerRegistryClient::with_interceptor(channel.clone(), inject);

    tracing::info!("--- auth and health");
    let e = pb::head_client::HeadClient::new(channel.clone())
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .err();
    assert_eq!(e.map(|s| s.code()), Some(Code::Unauthenticated));
    // Health turns SERVING once this one-head group has elected itself and is ready.
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for service in ["", "xnai.v1.Head", "xnai.v1.WorkerRegistry", "xnai.v1.Peer"] {
        loop {
            let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .expect("health");
            if health.into_inner().status == serving {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service:?} never SERVING"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    tracing::info!("--- register and heartbeat");
    let reg = registry
        .register_worker(pb::RegisterWorkerRequest {
            address: worker_addr.clone(),
            pid: 42,
            resources: Some(pb::Resources {
                cpus: 2.0,
                ..Default::default()
            }),
            arena_capacity: 1 << 20,
            request_id: "reg-1".into(),
            functions: vec!["echo".into(), "fail".into()],
            actor_classes: vec!["counter".into()],
        })
        .await
        .expect("register")
        .into_inner();
    let hb = |worker_id: String| pb::HeartbeatRequest {
        worker_id,
        pressure: "ok".into(),
        ..Default::default()
    };
    assert!(
        !registry
            .heartbeat(hb(reg.worker_id.clone()))
            .await
            .expect("hb")
            .into_inner()
            .reregister
    );
    let unknown = ObjectId::random().hex();
    assert!(
        registry
            .heartbeat(hb(unknown))
            .await
            .expect("hb")
            .into_inner()
            .reregister
    );

    tracing::info!("--- tasks");
    let submit = |function: &str, rid: &str, args: &[&str]| pb::SubmitTaskRequest {
        request_id: rid.into(),
        function: function.into(),
        args: args
            .iter()
            .map(|a| pb::Arg {
                kind: Some(pb::arg::Kind::Value(a.as_bytes().to_vec())),
            })
            .collect(),
        options: None,
        session_id: String::new(),
    };
    let e = client
        .submit_task(submit("nope", "s0", &[]))
        .await
        .err()
        .unwrap_or_else(|| Status::ok(""));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "unknown function \"nope\"; workers offer: echo, fail"
    );
    let e = client
        .submit_task(submit("echo", "", &[]))
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(e, Some(Code::InvalidArgument));
    let ok = client
        .submit_task(submit("echo", "s1", &["hello", "world"]))
        .await
        .expect("submit")
        .into_inner();
    let again = client
        .submit_task(submit("echo", "s1", &["x"]))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(ok, again, "a retried submit returns the first result");
    let locate = |object_id: String| pb::LocateObjectRequest {
        object_id,
        timeout_ms: 5000,
    };
    let info = client
        .locate_object(locate(ok.object_id.clone()))
        .await
        .expect("locate")
        .into_inner();
    assert_eq!((info.state, info.size), (pb::ObjectState::Ready as i32, 11));
    assert_eq!(info.locations[0].address, worker_addr);
    let bad = client
        .submit_task(submit("fail", "s2", &[]))
        .await
        .expect("submit")
        .into_inner();
    let info = client
        .locate_object(locate(bad.object_id))
        .await
        .expect("locate")
        .into_inner();
    assert_eq!(
        (info.state, info.error.as_str()),
        (pb::ObjectState::Failed as i32, "fail: refused")
    );
    let e = client
        .locate_object(locate(ObjectId::random().hex()))
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(e, Some(Code::NotFound));

    tracing::info!("--- actors");
    let create = pb::CreateActorRequest {
        request_id: "a1".into(),
        class: "counter".into(),
        args: vec![],
        options: Some(pb::ActorOptions {
            name: "c".into(),
            ..Default::default()
        }),
    };
    client.create_actor(create.clone()).await.expect("create");
    let get = pb::GetActorRequest {
        name_or_id: "c".into(),
        timeout_ms: 5000,
    };
    let actor = client
        .get_actor(get.clone())
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (actor.state, actor.address.as_str()),
        (pb::ActorState::Alive as i32, worker_addr.as_str())
    );
    let dup = pb::CreateActorRequest {
        request_id: "a2".into(),
        ..create
    };
    assert_eq!(
        client.create_actor(dup).await.err().map(|s| s.code()),
        Some(Code::AlreadyExists)
    );
    client
        .kill_actor(pb::KillActorRequest {
            request_id: "k1".into(),
            name_or_id: "c".into(),
        })
        .await
        .expect("kill");
    let actor = client.get_actor(get).await.expect("get").into_inner();
    assert_eq!(actor.state, pb::ActorState::Dead as i32);

    tracing::info!("--- puts");
    let target = client
        .pick_put_target(pb::PickPutTargetRequest { size: 100 })
        .await
        .expect("pick")
        .into_inner();
    assert_eq!(target.address, worker_addr);
    let e = client
        .pick_put_target(pb::PickPutTargetRequest { size: 2 << 20 })
        .await
        .err()
        .unwrap_or_else(|| Status::ok(""));
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().starts_with("object of 2.0 MiB does not fit"),
        "{}",
        e.message()
    );
    let put = ObjectId::random();
    let report = pb::ReportObjectRequest {
        worker_id: reg.worker_id.clone(),
        object_id: put.hex(),
        size: 5,
        crc32: 9,
        kind: pb::CopyKind::Put as i32,
    };
    registry.report_object(report).await.expect("report");
    let info = client
        .locate_object(locate(put.hex()))
        .await
        .expect("locate")
        .into_inner();
    assert_eq!(
        (info.state, info.producing_task_id.as_str()),
        (pb::ObjectState::Ready as i32, "")
    );

    let status = client
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.workers.len(), 1);
    assert_eq!(
        (
            status.workers[0].state.as_str(),
            status.heads[0].role.as_str()
        ),
        ("alive", "leader")
    );
    assert!(status.heads[0].commit_index > 0);

    tracing::info!("--- a long wait ends when the head stops");
    let mut stuck = submit("echo", "s9", &[]);
    let big = pb::Resources {
        cpus: 64.0,
        ..Default::default()
    };
    stuck.options = Some(pb::TaskOptions {
        resources: Some(big),
        ..Default::default()
    });
    let stuck = client
        .submit_task(stuck)
        .await
        .expect("submit")
        .into_inner();
    let mut waiter = client.clone();
    let wait = tokio::spawn(async move {
        waiter
            .locate_object(pb::LocateObjectRequest {
                object_id: stuck.object_id,
                timeout_ms: 600_000,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(());
    let waited = tokio::time::timeout(Duration::from_secs(5), wait).await;
    let code = waited
        .ok()
        .and_then(|j| j.ok())
        .and_then(|r| r.err())
        .map(|s| s.code());
    assert_eq!(code, Some(Code::Unavailable));
    let finished = tokio::time::timeout(Duration::from_secs(5), head).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "head did not stop cleanly: {finished:?}"
    );
}
