//! xnai-chaos: break an xnai cluster on purpose and check, Jepsen-style, that nothing it
//! acknowledged was lost. A run starts (or attaches to) a cluster ([`target`]), drives a
//! recorded workload against it ([`workload`]) while a seeded nemesis injects faults
//! ([`schedule`], [`nemesis`], [`proxy`]), heals everything, reads back every acknowledged
//! object, runs the [`checkers`] over the [`history`] and writes a [`report`].
//! Everything random derives from the seed, so a run replays.

pub mod checkers;
pub mod config;
pub mod error;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod raw;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod target;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xnai_sdk::{Client, ClientConfig};

use crate::checkers::Violation;
use crate::config::RunConfig;
use crate::error::Result;
use crate::history::{BreakerEvent, Recorder, WorkerSeen};
use crate::report::Report;
use crate::target::Target;

/// How long, after healing, the cluster may take to have every worker alive again before the
/// final reads start anyway.
const SETTLE: Duration = Duration::from_secs(30);

/// Run a whole chaos run and return its report (also written to `cfg.report`).
/// `keep_dir` keeps the local target's directory (logs, head data) for inspection; it is kept
/// anyway when a node crashed or the nemesis failed.
pub async fn run(cfg: RunConfig, keep_dir: bool) -> Result<Report> {
    let steps = schedule::plan(cfg.seed, &cfg.nemeses, cfg.duration, cfg.heads, cfg.workers);
    tracing::info!(
        faults = steps.len(),
        seed = cfg.seed,
        "--- starting the cluster"
    );
    let target = Target::start(&cfg).await?;
    let heads = target.heads();
    let token = target.token();
    // Which node each worker address is: ties the head's worker ids to the nemesis's targets.
    let nodes: BTreeMap<String, String> = target
        .worker_names()
        .into_iter()
        .filter_map(|n| Some((target.worker_address(&n)?, n)))
        .collect();
    let connect = || {
        let mut c = ClientConfig::new(heads.clone(), token.clone());
        c.session_lease = None;
        c.actor_start_timeout = Duration::from_secs(15);
        Client::connect(c)
    };
    let client = match connect().await {
        Ok(c) => c,
        Err(e) => {
            target.stop(keep_dir).await;
            return Err(e.into());
        }
    };
    let rec = Recorder::new();
    let ctx = Arc::new(workload::Ctx {
        rec: rec.clone(),
        raw: raw::RawHead::new(&heads, &token)?,
        client: client.clone(),
        seed: cfg.seed,
        stop: AtomicBool::new(false),
    });
    tracing::info!("--- workload and nemesis");
    let poller = tokio::spawn(poll_breakers(client.clone(), rec.clone(), nodes));
    let procs: Vec<_> = (0..cfg.clients)
        .map(|p| tokio::spawn(workload::process(ctx.clone(), p)))
        .collect();
    let mut nemesis = nemesis::Nemesis {
        target,
        client: connect().await?,
        rec: rec.clone(),
    };
    let started = Instant::now();
    let fault_result = nemesis.run(&steps).await;
    let left = cfg.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    ctx.stop.store(true, Ordering::Relaxed);
    for p in procs {
        let _ = tokio::time::timeout(Duration::from_secs(30), p).await;
    }
    let duration_s = rec.now_ms() as f64 / 1000.0;
    let mut extra: Vec<Violation> = nemesis
        .target
        .crashed()
        .into_iter()
        .map(|m| Violation {
            checker: "no-crash",
            message: m,
            witness: vec![],
        })
        .collect();
    for e in fault_result {
        extra.push(Violation {
            checker: "nemesis",
            message: format!("the nemesis could not inject a fault: {e}"),
            witness: vec![],
        });
    }
    tracing::info!("--- healing, then reading back every acknowledged object");
    nemesis.target.heal_all()?;
    settle(&client, cfg.workers).await;
    workload::verify::final_reads(ctx.clone()).await;
    poller.abort();
    let history = rec.snapshot();
    // A crashed node's logs and data are kept for inspection whatever `keep_dir` says.
    let kept = nemesis.target.stop(keep_dir || !extra.is_empty()).await;
    tracing::info!("--- checking {} operations", history.ops.len());
    let checks = checkers::check_all(&history);
    let mut report = Report::build(cfg.clone(), steps, duration_s, history, checks, extra);
    report.kept_dir = kept.map(|p| p.display().to_string());
    if cfg.omit_history {
        report.history.ops.clear();
    }
    report.write(&cfg.report)?;
    Ok(report)
}

/// Wait (bounded) until every worker is alive again after the heal.
async fn settle(client: &Client, workers: usize) {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if let Ok(s) = client.status().await
            && s.workers.iter().filter(|w| w.state == "alive").count() >= workers
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tracing::warn!("not every worker is alive {SETTLE:?} after the heal; reading anyway");
}

/// Poll `ClusterStatus` twice a second and record breaker state changes per worker, and every
/// worker id when first seen with the node (`nodes`: address to name) it is. Keyed by worker
/// id: a restarted worker registers anew on the same address, next to its dead entry.
/// Runs until the final reads are done (the run aborts it), so late registrations are seen.
async fn poll_breakers(client: Client, rec: Recorder, nodes: BTreeMap<String, String>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), client.status()).await {
            for w in s.workers {
                if !seen.contains_key(&w.worker_id) {
                    rec.worker(WorkerSeen {
                        at_ms: rec.now_ms(),
                        worker_id: w.worker_id.clone(),
                        address: w.address.clone(),
                        node: nodes.get(&w.address).cloned(),
                    });
                }
                let prev = seen
                    .get(&w.worker_id)
                    .cloned()
                    .unwrap_or_else(|| "closed".into());
                if prev != w.breaker {
                    rec.breaker(BreakerEvent {
                        at_ms: rec.now_ms(),
                        worker: format!("{} {}", w.address, w.worker_id),
                        from: prev,
                        to: w.breaker.clone(),
                    });
                }
                seen.insert(w.worker_id, w.breaker);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
