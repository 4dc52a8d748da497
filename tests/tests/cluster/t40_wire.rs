//! The wire as any gRPC client sees it: the token is required (UNAUTHENTICATED otherwise),
//! health answers without it, reflection lists the services, and oversized or malformed
//! requests get a clear status without harming the cluster.

use std::time::Duration;

use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::pb;
use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

async fn channel(addr: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_token_health_reflection_and_limits() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: start cluster");
    let c = start_cluster(ClusterOptions::default())?;
    let head = c.heads[0].clone();
    let ch = channel(&head).await?;

    tracing::info!("--- phase: no token and a wrong token are refused");
    let mut bare = pb::head_client::HeadClient::new(ch.clone());
    let e = bare
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let mut wrong =
        pb::head_client::HeadClient::with_interceptor(ch.clone(), TokenInject::new("wrong")?);
    let e = wrong
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let out = c
        .xnai_cmd()
        .env("XNAI_TOKEN", "wrong")
        .args(["status"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token"), "{err}");

    tracing::info!("--- phase: health answers without a token, on head and workers");
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    assert_eq!(
        r.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let status = c.status()?;
    let workers = status["workers"].as_array().cloned().unwrap_or_default();
    assert_eq!(workers.len(), 2, "{status}");
    for w in &workers {
        let addr = w["address"].as_str().unwrap_or_default();
        // A worker says SERVING only once registered with the leader and its arena is writable;
        // right after start-up that can take a heartbeat or two.
        xnai_tests::wait_until(Duration::from_secs(15), "the worker to say SERVING", || {
            let out = std::process::Command::new(c.bin_dir().join("xnai-worker"))
                .args(["health", "--addr", addr])
                .output()?;
            Ok(out.status.success())
        })?;
        let mut h = tonic_health::pb::health_client::HealthClient::new(channel(addr).await?);
        let r = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        assert_eq!(r.into_inner().status, 1, "worker {addr} serving");
        let out = std::process::Command::new(c.bin_dir().join("xnai-worker"))
            .args(["health", "--addr", addr])
            .output()?;
        assert!(out.status.success(), "xnai-worker health {addr}");
    }

    tracing::info!("--- phase: reflection lists the xnai services (with the token)");
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl =
        ServerReflectionClient::with_interceptor(ch.clone(), TokenInject::new(&c.token)?);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    let resp = stream.message().await?.expect("one reflection response");
    let names: Vec<String> = match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => anyhow::bail!("unexpected reflection response {other:?}"),
    };
    assert!(names.iter().any(|n| n == "xnai.v1.Head"), "{names:?}");
    assert!(
        names.iter().any(|n| n == "xnai.v1.WorkerRegistry"),
        "{names:?}"
    );

    tracing::info!("--- phase: oversized and malformed requests");
    let mut head_c =
        pb::head_client::HeadClient::with_interceptor(ch.clone(), TokenInject::new(&c.token)?)
            .max_encoding_message_size(64 << 20);
    let submit = |arg: Vec<u8>, function: &str| pb::SubmitTaskRequest {
        request_id: format!("t40-{}", rand::random::<u64>()),
        function: function.into(),
        args: vec![pb::Arg {
            kind: Some(pb::arg::Kind::Value(arg)),
        }],
        options: None,
        session_id: String::new(),
    };
    let e = head_c
        .submit_task(submit(vec![b'x'; 9 << 20], "echo"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
        ),
        "9 MiB message refused: {e:?}"
    );
    let e = head_c
        .submit_task(submit(vec![b'x'; 2 << 20], "echo"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("object"),
        "says to pass an object: {e:?}"
    );
    let e = head_c
        .submit_task(submit(b"x".to_vec(), "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut req = submit(b"x".to_vec(), "echo");
    req.request_id.clear();
    let e = head_c.submit_task(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let e = head_c
        .locate_object(pb::LocateObjectRequest {
            object_id: "zz".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let e = head_c
        .locate_object(pb::LocateObjectRequest {
            object_id: "0".repeat(31) + "7",
            timeout_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

    tracing::info!("--- phase: a put stream that lies about its size stores nothing");
    let w_addr = workers[0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut worker = pb::worker_client::WorkerClient::with_interceptor(
        channel(&w_addr).await?,
        TokenInject::new(&c.token)?,
    );
    let chunks = vec![
        pb::PutObjectChunk {
            kind: Some(pb::put_object_chunk::Kind::Header(pb::PutObjectHeader {
                size: 10,
                crc32: None,
                object_id: String::new(),
            })),
        },
        pb::PutObjectChunk {
            kind: Some(pb::put_object_chunk::Kind::Data(vec![1; 4].into())),
        },
    ];
    let e = worker
        .put_object(tokio_stream::iter(chunks))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    tracing::info!("--- phase: the cluster still serves");
    assert_eq!(c.xnai_ok(&["run", "echo", "fine"])?, "fine");
    Ok(())
}
