//! A seeded, randomized simulation of the head group on paused tokio time: 3 or 5 heads run
//! the real node code in one process over an in-process network, while simulated clients
//! propose through the real [`CommandLog`] API and a nemesis isolates heads, cuts links, drops
//! and delays messages, crashes heads and restarts them from their storage. The [`checker`]
//! checks the invariants throughout and after a final heal. A failing run names its seed:
//! `XNAI_SIM_SEED=N cargo nextest run -p xnai-head sim` replays it; `XNAI_SIM_SEEDS=N` runs more.

mod checker;
mod cluster;
mod group;
mod nemesis;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use xnai_proto::ids::SessionId;

use crate::log::CommandLog;
use crate::raft::hooks::Bug;
use crate::state::Command;
pub(crate) use group::{GroupLog, open_group};

use checker::Ack;
use cluster::{Cluster, Running, lock};

/// How long the faults run (virtual time).
const CHAOS: Duration = Duration::from_secs(8);
/// How long the group may take to elect, commit and catch up after the heal.
const SETTLE: Duration = Duration::from_secs(30);
/// Simulated clients.
const CLIENTS: u64 = 2;
/// How long a client waits for one proposal.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How one run went.
#[derive(Debug)]
pub(crate) struct RunReport {
    /// Invariant violations (empty: the run passed).
    pub(crate) violations: Vec<String>,
    /// Acknowledged proposals.
    pub(crate) acked: usize,
    /// Terms that saw a leader.
    pub(crate) terms: usize,
    /// Snapshots a lagging head installed from the leader.
    pub(crate) snapshots: usize,
    /// Message batches the network delivered and lost.
    pub(crate) net: crate::raft::transport::sim::NetStats,
}

/// The command a client proposes: it carries its request id.
fn command(rid: String, n: u128) -> Command {
    Command::OpenSession {
        request_id: rid,
        session_id: SessionId(n << 8),
        lease_ms: 60_000,
    }
}

/// One simulated client: propose to the leader (or, now and then, any head), record acks.
async fn client(
    c: u64,
    seed: u64,
    running: Running,
    checker: cluster::SharedChecker,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(c));
    let mut k: u128 = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..250))).await;
        let target = {
            let heads = lock(&running);
            let leader = heads
                .values()
                .find(|l| l.leadership() == crate::log::Leadership::Leader)
                .cloned();
            match leader {
                Some(l) if rng.random_bool(0.9) => Some(l),
                _ if heads.is_empty() => None,
                _ => heads
                    .values()
                    .nth(rng.random_range(0..heads.len()))
                    .cloned(),
            }
        };
        let Some(log) = target else { continue };
        k += 1;
        let rid = format!("c{c}-{k}");
        let sent = Instant::now();
        let cmd = command(rid.clone(), (u128::from(c) << 32) | k);
        if let Ok(Ok(_)) = tokio::time::timeout(PROPOSE_TIMEOUT, log.propose(vec![cmd])).await {
            lock(&checker).on_ack(Ack {
                rid,
                sent,
                acked: Instant::now(),
            });
        }
    }
}

/// Run seed `seed` with `n` heads on the current (paused-time) runtime.
pub(crate) async fn run(seed: u64, n: u64, bug: Option<Bug>) -> RunReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let snapshot_every = [0, 5, 20][rng.random_range(0..3)];
    tracing::info!(seed, n, snapshot_every, "--- start the group");
    let mut cluster = Cluster::start(seed, n, snapshot_every, bug).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let f = client(
                c,
                seed,
                cluster.running.clone(),
                cluster.checker.clone(),
                stop.clone(),
            );
            tokio::spawn(f)
        })
        .collect();

    tracing::info!("--- faults");
    let until = Instant::now() + CHAOS;
    while Instant::now() < until && lock(&cluster.checker).violations.is_empty() {
        nemesis::step(&mut cluster, &mut rng).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }

    tracing::info!("--- heal, restart every head, wait for a leader");
    cluster
        .net
        .heal((Duration::from_millis(1), Duration::from_millis(5)));
    for id in cluster.down() {
        cluster.start_head(id).await;
    }
    let deadline = Instant::now() + SETTLE;
    let end = settle(&cluster, deadline).await;
    if let Some(end) = end {
        tracing::info!(end, "--- every head applies up to the barrier");
        let all = cluster.ids.clone();
        while Instant::now() < deadline
            && all.iter().any(|&h| lock(&cluster.checker).applied(h) < end)
        {
            tokio::time::sleep(cluster::TICK).await;
        }
        lock(&cluster.checker).final_check(end, &all);
    }
    cluster.stop().await;
    let net = cluster.net.stats();
    let checker = lock(&cluster.checker);
    let (terms, acked, snapshots) = checker.counts();
    RunReport {
        violations: checker.violations.clone(),
        acked,
        terms,
        snapshots,
        net,
    }
}

/// Wait for a leader, commit a barrier through it and see it applied; returns its index.
async fn settle(cluster: &Cluster, deadline: Instant) -> Option<u64> {
    let mut attempt = 0;
    while Instant::now() < deadline {
        if let Some((_, log)) = cluster.leader() {
            // A new id per attempt: an attempt that timed out may still commit.
            attempt += 1;
            let rid = format!("barrier-{attempt}");
            let cmd = command(rid.clone(), 0);
            if let Ok(Ok(_)) = tokio::time::timeout(PROPOSE_TIMEOUT, log.propose(vec![cmd])).await {
                // Acknowledged: it must be applied somewhere (a broken head may ack early).
                while Instant::now() < deadline {
                    if let Some(index) = lock(&cluster.checker).index_of(&rid) {
                        return Some(index);
                    }
                    tokio::time::sleep(cluster::TICK).await;
                }
                let text = format!("the acknowledged barrier {rid} was never applied (lost)");
                lock(&cluster.checker).violations.push(text);
                return None;
            }
        }
        tokio::time::sleep(cluster::TICK).await;
    }
    let text = format!("no leader committed a barrier within {SETTLE:?} of the heal");
    lock(&cluster.checker).violations.push(text);
    None
}

/// Run `seed` on a fresh paused-time runtime.
pub(crate) fn run_seed(seed: u64, n: u64, bug: Option<Bug>) -> RunReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(seed, n, bug))
}
