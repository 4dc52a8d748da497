//! xnai head: the control plane of an xnai cluster. It keeps the control state (workers,
//! tasks, actors, the object directory) as a deterministic state machine behind a durable
//! command log, schedules work onto workers, and serves the `Head` and `WorkerRegistry` APIs.

#![warn(missing_docs)]

pub mod error;
pub mod fault;
pub mod health;
pub mod log;
pub mod raft;
pub mod runtime;
pub mod scheduler;
pub mod service;
pub mod soft;
pub mod state;
pub mod worker_link;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use xnai_proto::auth::{TokenCheck, TokenInject};
use xnai_proto::limits::MAX_MESSAGE_BYTES;
use xnai_proto::pb::head_server::HeadServer;
use xnai_proto::pb::worker_registry_server::WorkerRegistryServer;
use xnai_proto::serve::{NodeHealth, ServerRole};
use xnai_proto::supervise::Supervisor;

pub use error::{HeadError, Result};
use log::CommandLog;
use raft::{RaftConfig, RaftLog};
use runtime::Runtime;
use service::leader::LeaderGate;
use service::{HeadApi, HeadContext, HeadIdentity, RegistryApi};
use soft::{Heartbeats, Pressure};
use worker_link::GrpcWorkerPool;
use xnai_proto::pb::peer_server::PeerServer;
use xnai_proto::timings::Timings;

/// Everything `run` needs; `main.rs` fills it from flags.
#[derive(Debug, Clone)]
pub struct HeadConfig {
    /// This head's small integer id.
    pub id: u64,
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// An inherited listening socket to serve on instead of binding `listen`
    /// ([`xnai_proto::handover::adopt`]).
    pub listen_fd: Option<std::os::fd::RawFd>,
    /// Where sled keeps the log and snapshots.
    pub data_dir: PathBuf,
    /// The cluster token every call must carry.
    pub token: String,
    /// Written with the bound `host:port` once serving.
    pub addr_file: Option<PathBuf>,
    /// Most tasks pending or running before SubmitTask is refused.
    pub max_pending_tasks: u64,
    /// Heartbeat lease: a worker silent this long is declared dead (also the grace period a
    /// new leader gives workers). Heartbeat, silence and probe intervals derive from it
    /// ([`Timings`]).
    pub worker_lease: std::time::Duration,
    /// How this head takes part in the Raft group (its `snapshot_every` is the one used).
    pub raft: RaftConfig,
}

/// Write `host:port\n` to `path` atomically (temp file, then rename).
fn write_addr_file(path: &Path, addr: &str) -> Result<()> {
    let err = |source| HeadError::AddrFile {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{addr}\n")).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// How long in-flight calls get to finish once the head stops (signal or a dead task) before
/// their connections are dropped: long waits (`LocateObject`) end early on `stopping`, so this
/// only bounds a stuck call.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Run a head until `shutdown` resolves: recover the state from `data_dir`, start the runtime
/// (scheduling and dispatch), and serve Head, WorkerRegistry, Peer, health and reflection on
/// one port. If an essential task dies (the Raft node on a panic or a storage error, the
/// runtime supervisor, the server), the head marks itself NOT_SERVING, stops serving and
/// returns [`HeadError::TaskDied`] with the cause, so the binary exits non-zero and is
/// restarted.
pub async fn run(
    config: HeadConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.token.is_empty() {
        return Err(HeadError::InvalidArgument(
            "the cluster token is empty: pass --token or set XNAI_TOKEN".into(),
        ));
    }
    let (listener, listen_name) = match config.listen_fd {
        Some(fd) => {
            let name = format!("inherited fd {fd}");
            let listener = xnai_proto::handover::adopt(fd).map_err(|source| HeadError::Bind {
                addr: name.clone(),
                source,
            })?;
            (listener, name)
        }
        None => {
            let listener =
                TcpListener::bind(&config.listen)
                    .await
                    .map_err(|source| HeadError::Bind {
                        addr: config.listen.clone(),
                        source,
                    })?;
            (listener, config.listen.clone())
        }
    };
    let local = listener.local_addr().map_err(|source| HeadError::Bind {
        addr: listen_name,
        source,
    })?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| HeadError::Log(log::LogError::Storage(e.into())))?;
    let inject = TokenInject::new(&config.token)
        .map_err(|s| HeadError::InvalidArgument(s.message().to_string()))?;
    let supervisor = Supervisor::new();
    let started = RaftLog::open(
        &config.raft,
        &config.data_dir,
        local.to_string(),
        inject.clone(),
        &supervisor,
    )
    .await?;
    let raft_log = Arc::new(started.log);
    let log: Arc<dyn CommandLog> = raft_log.clone();
    let beats = Arc::new(Heartbeats::new(Timings::new(config.worker_lease)));
    let pool = Arc::new(GrpcWorkerPool::new(inject));
    let runtime = supervisor.spawn(
        "runtime supervisor",
        supervise_runtime(
            raft_log.clone(),
            log.clone(),
            pool,
            beats.clone(),
            supervisor.clone(),
        ),
    );
    let (health, health_svc) = NodeHealth::new(&health::ALL[1..]).await;
    let following = tokio::spawn(health::follow(raft_log.status(), health.clone()));

    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(HeadContext {
        log: log.clone(),
        beats,
        identity: HeadIdentity {
            id: config.id,
            address: local.to_string(),
            pid: std::process::id(),
        },
        max_pending_tasks: config.max_pending_tasks,
        stopping,
    });
    let check = TokenCheck::new(&config.token);
    let gate = LeaderGate::new(log.clone());
    let peer = PeerServer::new(started.peer)
        .max_decoding_message_size(raft::peer::PEER_MESSAGE_BYTES)
        .max_encoding_message_size(raft::peer::PEER_MESSAGE_BYTES);
    let head = HeadServer::new(HeadApi::new(ctx.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let registry = WorkerRegistryServer::new(RegistryApi::new(ctx))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let reflection =
        xnai_proto::serve::reflection().map_err(|e| HeadError::Reflection(e.to_string()))?;

    if let Some(path) = &config.addr_file {
        write_addr_file(path, &local.to_string())?;
    }
    tracing::info!(id = config.id, addr = %local, cluster_id = %config.raft.cluster_id, data_dir = %config.data_dir.display(), "head serving");
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
    let server = xnai_proto::serve::server(ServerRole::Head)
        .add_service(health_svc)
        .add_service(InterceptedService::new(
            InterceptedService::new(head, gate.clone()),
            check.clone(),
        ))
        .add_service(InterceptedService::new(
            InterceptedService::new(registry, gate),
            check.clone(),
        ))
        .add_service(InterceptedService::new(peer, check.clone()))
        .add_service(InterceptedService::new(reflection, check))
        .serve_with_incoming_shutdown(xnai_proto::serve::incoming(listener), async {
            let _ = end_rx.await;
        });
    let mut server = tokio::spawn(server);

    let died = tokio::select! {
        _ = shutdown => None,
        f = supervisor.failed() => Some(f),
        r = &mut server => Some(xnai_proto::supervise::TaskFailure {
            task: "gRPC server",
            cause: match r {
                Ok(Ok(())) => "stopped".into(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            },
        }),
    };
    supervisor.stop();
    health
        .set(&health::ALL, false, "the head is stopping")
        .await;
    stop_tx.send_replace(true);
    let _ = end_tx.send(());
    if !server.is_finished()
        && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
    {
        tracing::warn!("calls still running after {SHUTDOWN_GRACE:?}: dropping their connections");
        server.abort();
    }
    // Closing the log ends the node task (if it still runs); its status channel closes and
    // the runtime supervisor stops the runtime.
    log.close().await;
    let _ = runtime.await;
    following.abort();
    match died {
        None => {
            tracing::info!("head stopped");
            Ok(())
        }
        Some(f) => {
            tracing::error!(cause = %f, "head stopped: an essential task died");
            Err(HeadError::TaskDied(f))
        }
    }
}

/// Run the runtime (scheduling and dispatch) only while this head leads and has applied an
/// entry of its own term (so its state is complete). A new leader first gives every live worker
/// a grace period (a fresh heartbeat record, so none is declared dead before it could reach the
/// new leader), then starts the runtime, which re-dispatches running tasks and starting actors.
/// Ends `Ok` when the Raft node's status channel closes (after the node's own failure report,
/// if it died); `Err` if the runtime task dies.
async fn supervise_runtime(
    raft: Arc<RaftLog>,
    log: Arc<dyn CommandLog>,
    pool: Arc<GrpcWorkerPool>,
    beats: Arc<Heartbeats>,
    supervisor: Supervisor,
) -> std::result::Result<(), String> {
    let mut status = raft.status();
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    let result = loop {
        let leading = status.borrow_and_update().leader_ready;
        if leading && running.is_none() {
            let alive: Vec<_> = log.state().read(|s| {
                s.workers
                    .keys()
                    .filter(|id| s.worker_alive(id))
                    .copied()
                    .collect()
            });
            for w in alive {
                beats.record(w, 0, 0, Pressure::Ok);
            }
            // Bounded, and the Raft node never blocks on it (that would stop heartbeats and
            // elections, and deadlock with the runtime's own proposals): when full it drops the
            // batch and the runtime, told it lagged, resynchronises from the state.
            let (tx, rx) = log::effects_channel(log::EFFECTS_QUEUE);
            raft.set_effects(Some(tx));
            let rt = Runtime::new(log.clone(), pool.clone(), beats.clone());
            running = Some(tokio::spawn(rt.run(rx)));
            tracing::info!("leading: runtime started");
        } else if !leading && let Some(h) = running.take() {
            raft.set_effects(None);
            h.abort();
            let _ = h.await;
            tracing::info!("not leading: runtime stopped");
        }
        let ended = async {
            match running.as_mut() {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = status.changed() => if changed.is_err() {
                if !supervisor.is_stopping() {
                    // The node task died: let its own report (the real cause) come first.
                    supervisor.failed().await;
                }
                break Ok(());
            },
            r = ended => {
                running = None;
                break Err(match r {
                    Ok(()) => "the runtime ended while leading".to_string(),
                    Err(e) => format!("the runtime died: {e}"),
                });
            }
        }
    };
    raft.set_effects(None);
    if let Some(h) = running.take() {
        h.abort();
        let _ = h.await;
    }
    result
}
