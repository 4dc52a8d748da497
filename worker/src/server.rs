//! Wiring of a worker process: open the arena, bind, serve `Worker` and `LocalArena` (+
//! reflection, token checked) and health (open, NOT_SERVING until registered), register with
//! the head, write the address file, heartbeat, and on shutdown (or when a supervised task
//! dies) stop serving, stop actors and remove the arena.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use xnai_proto::auth::{TokenCheck, TokenInject};
use xnai_proto::limits::{LOCAL_PUT_LEASE_MS, MAX_MESSAGE_BYTES, MAX_OPEN_LOCAL_PUTS};
use xnai_proto::pb::local_arena_server::LocalArenaServer;
use xnai_proto::pb::worker_server::WorkerServer;
use xnai_proto::serve::{NodeHealth, ServerRole};
use xnai_proto::supervise::Supervisor;

use crate::Config;
use crate::actors::{ActorHost, ClassRegistry};
use crate::arena::pressure::read_pressure;
use crate::arena::{Arena, LocalPuts};
use crate::error::{Result, WorkerError};
use crate::executor::{Executor, GrpcPuller, TaskLimits};
use crate::functions::FunctionRegistry;
use crate::head_link::heartbeat::{HeartbeatStatus, forward_evictions, heartbeat_loop};
use crate::head_link::{HeadLink, ObjectReporter, Registration};
use crate::health;
use crate::inference_actor::{self, InferenceActors};
use crate::retrieval_actor::cluster::{ClusterLink, LocalEmbedders};
use crate::retrieval_actor::{self, RetrievalActors};
use crate::service::{LocalArenaService, WorkerService};

/// Run a worker with the built-in functions and classes until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let builtin_memory = config.builtin_memory_bytes.min(config.arena.capacity);
    let functions = FunctionRegistry::with_builtins(builtin_memory);
    run_with(config, functions, ClassRegistry::with_builtins(), shutdown).await
}

/// Write `text` to `path` atomically (temp file + rename).
fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)
        .map_err(|e| WorkerError::io(format!("writing {}", path.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| WorkerError::io(format!("renaming into {}", path.display()), e))
}

/// Run a worker with these registries (a user's own functions and classes) until `shutdown`.
pub async fn run_with(
    config: Config,
    functions: FunctionRegistry,
    classes: ClassRegistry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.heads.is_empty() {
        return Err(WorkerError::Config(
            "no head address: pass --head HOST:PORT".into(),
        ));
    }
    let inject = TokenInject::new(&config.token)
        .map_err(|s| WorkerError::Config(s.message().to_string()))?;
    let (arena, evictions) = Arena::open(config.arena.clone())?;
    arena.set_put_idle_timeout(config.put_idle_timeout);
    let spill = config.arena.spill.as_ref();
    tracing::info!(dir = %arena.dir().display(), capacity = arena.capacity(),
        spill_dir = ?spill.map(|s| &s.dir), spill_bytes = spill.map_or(0, |s| s.capacity), "arena ready");
    let result = serve(
        config,
        functions,
        classes,
        shutdown,
        arena.clone(),
        evictions,
        inject,
    )
    .await;
    if let Err(e) = arena.remove_all() {
        tracing::warn!(error = %e, "could not remove the arena");
    }
    result
}

async fn serve(
    config: Config,
    functions: FunctionRegistry,
    classes: ClassRegistry,
    shutdown: impl Future<Output = ()> + Send + 'static,
    arena: Arena,
    evictions: crate::arena::EvictionReceiver,
    inject: TokenInject,
) -> Result<()> {
    let listener = match config.listen_fd {
        Some(fd) => xnai_proto::handover::adopt(fd)
            .map_err(|e| WorkerError::io(format!("adopting the inherited listener fd {fd}"), e))?,
        None => tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| WorkerError::io(format!("binding {}", config.listen), e))?,
    };
    let local = listener
        .local_addr()
        .map_err(|e| WorkerError::io("reading the bound address", e))?;
    let advertise = config.advertise.clone().unwrap_or_else(|| {
        let ip = if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        };
        std::net::SocketAddr::new(ip, local.port()).to_string()
    });
    tracing::info!(listen = %local, advertise = %advertise, "worker listening");

    let actors = Arc::new(ActorHost::start(classes, config.actor_threads)?);
    let inference = Arc::new(InferenceActors::with_model_budget(
        config.model_budget_bytes,
    ));
    let local_embedders = Arc::new(LocalEmbedders::new(inference.loader()));
    let mut functions = functions;
    retrieval_actor::register_embed_function(&mut functions, Arc::clone(&local_embedders));
    let retrieval = Arc::new(RetrievalActors::new(Arc::new(ClusterLink::new(
        config.heads.clone(),
        config.token.clone(),
        local_embedders,
    ))));
    let mut actor_classes = actors.class_names();
    actor_classes.push(inference_actor::CLASS.to_string());
    actor_classes.push(retrieval_actor::CLASS.to_string());
    actor_classes.sort();
    actor_classes.dedup();
    let registration = Registration {
        address: advertise.clone(),
        pid: std::process::id(),
        cpus: config.cpus,
        memory_bytes: config.memory_bytes,
        labels: config.labels.clone(),
        arena_capacity: arena.capacity(),
        functions: functions.names(),
        actor_classes,
    };
    let link = Arc::new(HeadLink::new(
        config.heads.clone(),
        inject.clone(),
        registration,
    ));
    let reporter: Arc<dyn ObjectReporter> = Arc::new(Arc::clone(&link));
    let executor = Executor::with_limits(
        arena.clone(),
        functions,
        Arc::new(GrpcPuller::new(inject)),
        Arc::clone(&reporter),
        TaskLimits::new(config.cpus, config.max_zero_cpu_tasks),
    );
    let local_puts = Arc::new(LocalPuts::new(
        arena.clone(),
        Duration::from_millis(LOCAL_PUT_LEASE_MS),
        MAX_OPEN_LOCAL_PUTS,
    ));
    let local_arena = LocalArenaServer::new(LocalArenaService::new(
        arena.clone(),
        Arc::clone(&local_puts),
        Arc::clone(&reporter),
    ));
    let service = WorkerService::new(
        executor.clone(),
        Arc::clone(&actors),
        arena.clone(),
        reporter,
    )
    .with_inference(inference)
    .with_retrieval(retrieval);

    let check = TokenCheck::new(&config.token);
    let worker = WorkerServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let reflection = xnai_proto::serve::reflection()
        .map_err(|e| WorkerError::Config(format!("reflection: {e}")))?;
    // Every name starts NOT_SERVING; the health task says SERVING once registered.
    let (health, health_svc) = NodeHealth::new(&health::ALL[1..]).await;
    let supervisor = Supervisor::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = xnai_proto::serve::server(ServerRole::Worker)
        .add_service(health_svc)
        .add_service(InterceptedService::new(worker, check.clone()))
        .add_service(InterceptedService::new(local_arena, check.clone()))
        .add_service(InterceptedService::new(reflection, check))
        .serve_with_incoming_shutdown(xnai_proto::serve::incoming(listener), async {
            let _ = stop_rx.await;
        });
    let mut server = supervisor.spawn("gRPC server", server);
    let mut loops = vec![
        supervisor.spawn(
            "health check",
            forever(health::follow(
                Arc::clone(&link),
                arena.dir().to_path_buf(),
                health.clone(),
            )),
        ),
        supervisor.spawn(
            "local put expiry",
            forever(async move {
                let mut every = tokio::time::interval(Duration::from_secs(5));
                loop {
                    every.tick().await;
                    local_puts.expire(std::time::Instant::now());
                }
            }),
        ),
    ];

    tokio::pin!(shutdown);
    let mut died = tokio::select! {
        _ = link.register(0) => None,
        _ = &mut shutdown => Some(None),
        f = supervisor.failed() => Some(Some(f)),
    };
    if died.is_none() {
        // Say SERVING before the address file tells the launcher this worker is ready.
        health::check_once(&link, arena.dir(), &health).await;
        if let Some(path) = &config.addr_file {
            write_atomic(path, &format!("{advertise}\n"))?;
        }
        let (a, e, p) = (arena.clone(), executor.clone(), config.pressure);
        let status = Box::new(move || {
            let u = a.usage();
            HeartbeatStatus {
                running_tasks: e.running(),
                arena_used: u.used,
                arena_capacity: u.capacity,
                pressure: read_pressure(a.dir()).level(p).as_str(),
                spill: a.spill_usage(),
            }
        });
        let e = executor.clone();
        let forget = Box::new(move || {
            let dropped = e.forget_all_objects();
            tracing::warn!(dropped, "dropped every object of the previous registration");
        });
        loops.push(supervisor.spawn(
            "head link (heartbeats)",
            forever(heartbeat_loop(Arc::clone(&link), status, forget)),
        ));
        loops.push(supervisor.spawn(
            "eviction reports",
            forever(forward_evictions(Arc::clone(&link), evictions)),
        ));
        died = tokio::select! {
            _ = &mut shutdown => Some(None),
            f = supervisor.failed() => Some(Some(f)),
        };
    }
    let died = died.flatten();
    supervisor.stop();
    tracing::info!("shutting down");
    health
        .set(&health::ALL, false, "the worker is stopping")
        .await;
    for l in &loops {
        l.abort();
    }
    let _ = stop_tx.send(());
    if tokio::time::timeout(Duration::from_secs(5), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    actors.shutdown();
    match died {
        None => Ok(()),
        Some(f) => Err(WorkerError::TaskDied(f)),
    }
}

/// A loop that should never end, as a supervised task: ending at all is reported.
async fn forever(task: impl Future<Output = ()>) -> std::result::Result<(), String> {
    task.await;
    Err("ended unexpectedly".into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use xnai_proto::pb::worker_client::WorkerClient;
    use xnai_proto::pb::{self, CopyKind as PbCopyKind};

    use super::*;
    use crate::arena::ArenaConfig;
    use crate::arena::pressure::PressureThresholds;
    use crate::head_link::fake_head::FakeHead;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_registers_serves_and_cleans_up() {
        let head = FakeHead::default();
        let head_addr = head.serve("tok").await;
        let root = tempfile::tempdir().unwrap();
        let addr_file = root.path().join("addr");
        let arena_dir = root.path().join("arena");
        let config = Config {
            heads: vec![head_addr],
            listen: "127.0.0.1:0".parse().unwrap(),
            listen_fd: None,
            advertise: None,
            token: "tok".into(),
            arena: ArenaConfig {
                dir: Some(arena_dir.clone()),
                capacity: 8 << 20,
                spill: None,
            },
            cpus: 1.0,
            memory_bytes: 1 << 30,
            labels: HashMap::new(),
            addr_file: Some(addr_file.clone()),
            pressure: PressureThresholds {
                warn: 0.85,
                critical: 0.95,
            },
            actor_threads: 1,
            model_budget_bytes: 1 << 29,
            max_zero_cpu_tasks: 4,
            builtin_memory_bytes: 1 << 30,
            put_idle_timeout: Duration::from_secs(30),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(run(config, async {
            let _ = stopped.await;
        }));
        let mut addr = String::new();
        for _ in 0..300 {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                addr = a;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let addr = addr.trim().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr:?}");
        assert_eq!(head.seen.lock().unwrap().registrations[0].address, addr);
        // Registered and heartbeating: health turns SERVING (it started NOT_SERVING).
        let probe = |service: &'static str| {
            xnai_proto::serve::probe(&addr, service, Duration::from_secs(2))
        };
        let mut serving = false;
        for _ in 0..300 {
            serving = probe("xnai.v1.Worker").await.unwrap();
            if serving {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(serving, "the worker never turned SERVING after registering");
        assert!(probe("").await.unwrap());
        assert!(probe("xnai.v1.LocalArena").await.unwrap());

        let channel = crate::executor::pull::peer_channel(&addr).unwrap();
        let mut anon = WorkerClient::new(channel.clone());
        let e = anon
            .fetch_object(pb::FetchObjectRequest {
                object_id: "x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let mut c = WorkerClient::with_interceptor(channel, TokenInject::new("tok").unwrap());
        use pb::put_object_chunk::Kind;
        let msgs = vec![
            pb::PutObjectChunk {
                kind: Some(Kind::Header(pb::PutObjectHeader {
                    size: 5,
                    crc32: Some(crc32fast::hash(b"hello")),
                    object_id: String::new(),
                })),
            },
            pb::PutObjectChunk {
                kind: Some(Kind::Data(crate::convert::to_wire(
                    bytes::Bytes::from_static(b"hello"),
                ))),
            },
        ];
        let put = c
            .put_object(futures::stream::iter(msgs))
            .await
            .unwrap()
            .into_inner();
        {
            let seen = head.seen.lock().unwrap();
            assert_eq!(
                seen.objects[0].object_id, put.object_id,
                "reported before the reply"
            );
            assert_eq!(seen.objects[0].kind, PbCopyKind::Put as i32);
        }
        assert!(arena_dir.join(&put.object_id).exists());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!head.seen.lock().unwrap().heartbeats.is_empty());

        stop.send(()).unwrap();
        worker.await.unwrap().unwrap();
        assert!(!arena_dir.exists(), "arena removed on graceful stop");
    }
}
