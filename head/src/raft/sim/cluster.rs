//! The simulated head group: `n` heads running the real node code ([`RaftLog::start`]) over
//! [`MemoryStorage`] and the in-process [`SimNetwork`], with crash and restart from the same
//! storage. Every head reports applied entries and status changes to the shared [`Checker`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use xnai_proto::auth::TokenInject;

use super::checker::Checker;
use crate::log::{CommandLog, Leadership};
use crate::raft::StartOptions;
use crate::raft::hooks::{Bug, Hooks};
use crate::raft::storage::MemoryStorage;
use crate::raft::transport::sim::SimNetwork;
use crate::raft::{RaftConfig, RaftLog};

/// Raft timing in the simulation (virtual time: only the number of events costs).
pub(super) const TICK: Duration = Duration::from_millis(50);
/// Heartbeat every 2 ticks; election timeouts are drawn per head from 10..20 ticks.
const HEARTBEAT_TICK: usize = 2;
const ELECTION_TICKS: std::ops::Range<usize> = 10..20;

/// Lock a mutex, surviving a panicked holder (the test reports the panic itself).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The checker, shared by the heads' observers and the clients.
pub(super) type SharedChecker = Arc<Mutex<Checker>>;

/// The running heads, shared with the simulated clients.
pub(super) type Running = Arc<Mutex<BTreeMap<u64, Arc<RaftLog>>>>;

/// `n` simulated heads.
pub(super) struct Cluster {
    /// Every head's id (1..=n).
    pub(super) ids: Vec<u64>,
    /// The network between them.
    pub(super) net: SimNetwork,
    /// Each head's storage; it outlives crashes.
    stores: BTreeMap<u64, MemoryStorage>,
    /// The heads now running.
    pub(super) running: Running,
    /// Invariants, fed by every head.
    pub(super) checker: SharedChecker,
    /// Dice for election timeouts.
    rng: StdRng,
    bug: Option<Bug>,
    snapshot_every: u64,
}

impl Cluster {
    /// Start `n` heads; randomness is derived from `seed`.
    pub(super) async fn start(seed: u64, n: u64, snapshot_every: u64, bug: Option<Bug>) -> Self {
        let ids: Vec<u64> = (1..=n).collect();
        let mut c = Self {
            net: SimNetwork::new(seed ^ 0x6e65_7477_6f72_6b00),
            stores: ids.iter().map(|&i| (i, MemoryStorage::new())).collect(),
            ids,
            running: Default::default(),
            checker: Default::default(),
            rng: StdRng::seed_from_u64(seed ^ 0x656c_6563_7469_6f6e),
            bug,
            snapshot_every,
        };
        for id in c.ids.clone() {
            c.start_head(id).await;
        }
        c
    }

    /// Start (or restart) head `id` on its storage.
    pub(super) async fn start_head(&mut self, id: u64) {
        let peers = self.ids.iter().map(|&i| (i, format!("sim-{i}"))).collect();
        let cfg = RaftConfig {
            id,
            cluster_id: "sim".into(),
            peers,
            join: false,
            snapshot_every: self.snapshot_every,
            tick: TICK,
            election_tick: ELECTION_TICKS.start,
            heartbeat_tick: HEARTBEAT_TICK,
            max_snapshot_bytes: crate::raft::chunks::DEFAULT_MAX_SNAPSHOT_BYTES,
        };
        let checker = self.checker.clone();
        let hooks = Hooks {
            on_apply: Some(Arc::new(move |ev| lock(&checker).on_apply(id, ev))),
            bug: self.bug,
        };
        let options = StartOptions {
            hooks,
            fixed_election_tick: Some(self.rng.random_range(ELECTION_TICKS)),
            supervisor: None,
            build_in_task: true,
        };
        let net = self.net.clone();
        let token = TokenInject::new("sim").expect("printable token");
        let store = self.stores[&id].clone();
        let started = RaftLog::start(
            &cfg,
            store,
            format!("sim-{id}"),
            token,
            move |mailbox, _| net.attach(id, mailbox),
            options,
        )
        .await
        .expect("a simulated head starts");
        let log = Arc::new(started.log);
        // The node task has not run yet: this is what it restored.
        lock(&self.checker).started(id, *log.applied().borrow());
        let mut status = log.status();
        let checker = self.checker.clone();
        tokio::spawn(async move {
            loop {
                let s = status.borrow_and_update().clone();
                lock(&checker).on_status(id, &s);
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
        lock(&self.running).insert(id, log);
    }

    /// Kill head `id` abruptly (it keeps its storage).
    pub(super) fn crash(&mut self, id: u64) {
        if let Some(log) = lock(&self.running).remove(&id) {
            log.crash();
        }
        self.net.detach(id);
    }

    /// Heads not running.
    pub(super) fn down(&self) -> Vec<u64> {
        let running = lock(&self.running);
        self.ids
            .iter()
            .copied()
            .filter(|i| !running.contains_key(i))
            .collect()
    }

    /// A running head that leads with its state complete, if any.
    pub(super) fn leader(&self) -> Option<(u64, Arc<RaftLog>)> {
        lock(&self.running)
            .iter()
            .find(|(_, l)| l.leadership() == Leadership::Leader)
            .map(|(&i, l)| (i, l.clone()))
    }

    /// Stop every head (end of the run).
    pub(super) async fn stop(&mut self) {
        let logs: Vec<_> = std::mem::take(&mut *lock(&self.running))
            .into_values()
            .collect();
        for l in logs {
            l.close().await;
        }
    }
}
