//! A replicated [`CommandLog`] for the shared log suite: `n` heads over the in-process network,
//! on any [`RaftStorage`] (sled needs real time: its fsync runs on its own threads, which paused
//! time does not wait for; memory runs on paused time). Head 1 times out first and the others
//! much later, so the group elects head 1 at once and keeps it; proposals go to the leader.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use xnai_proto::auth::TokenInject;

use crate::log::{CommandLog, Leadership, LogError, SharedState};
use crate::raft::StartOptions;
use crate::raft::storage::RaftStorage;
use crate::raft::transport::sim::SimNetwork;
use crate::raft::{RaftConfig, RaftLog};
use crate::state::{Command, Outcome};

/// How long an election, or a proposal retried across one, may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// `n` heads that act as one log; the leader found at open serves every call.
pub(crate) struct GroupLog {
    heads: Vec<Arc<RaftLog>>,
    leader: usize,
}

/// Open (or reopen) an `n`-head group on the storages `storage(id)` gives, once a head leads.
pub(crate) async fn open_group<S: RaftStorage>(
    n: u64,
    snapshot_every: u64,
    storage: impl Fn(u64) -> S,
) -> GroupLog {
    let net = SimNetwork::new(n);
    net.heal((Duration::from_millis(1), Duration::from_millis(2)));
    let peers: std::collections::BTreeMap<u64, String> =
        (1..=n).map(|i| (i, format!("sim-{i}"))).collect();
    let mut heads = Vec::new();
    for id in 1..=n {
        let cfg = RaftConfig {
            id,
            cluster_id: "suite".into(),
            peers: peers.clone(),
            join: false,
            snapshot_every,
            tick: Duration::from_millis(10),
            election_tick: 10,
            heartbeat_tick: 2,
            max_snapshot_bytes: crate::raft::chunks::DEFAULT_MAX_SNAPSHOT_BYTES,
        };
        let net = net.clone();
        let started = RaftLog::start(
            &cfg,
            storage(id),
            format!("sim-{id}"),
            TokenInject::new("suite").expect("token"),
            move |mailbox, _| net.attach(id, mailbox),
            StartOptions {
                // 100 ms for head 1, 2 s for the others: no split votes, no needless elections.
                fixed_election_tick: Some(if id == 1 { 10 } else { 200 }),
                ..Default::default()
            },
        )
        .await
        .expect("start head");
        heads.push(Arc::new(started.log));
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(leader) = heads
            .iter()
            .position(|h| h.leadership() == Leadership::Leader)
        {
            return GroupLog { heads, leader };
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl CommandLog for GroupLog {
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> BoxFuture<'static, Result<Vec<Outcome>, LogError>> {
        let leader = self.heads[self.leader].clone();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                match leader.propose(commands.clone()).await {
                    Err(LogError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    other => return other,
                }
            }
        })
    }

    fn state(&self) -> &SharedState {
        self.heads[self.leader].state()
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.heads[self.leader].applied()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let closing: Vec<_> = self.heads.iter().map(|h| h.close()).collect();
        Box::pin(async move {
            futures::future::join_all(closing).await;
        })
    }
}
