//! A replicated [`CommandLog`] for the shared log suite: `n` heads on sled (one directory each
//! under the suite's directory) over the in-process network, on real time (sled's fsync runs on
//! its own threads, which paused time cannot wait for). Proposals go to the leader.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use xnai_proto::auth::TokenInject;

use crate::log::{CommandLog, Leadership, LogError, SharedState};
use crate::raft::raftlog::StartOptions;
use crate::raft::storage::SledStorage;
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

/// Open (or reopen) an `n`-head group whose storage lives under `dir`, once a head leads.
pub(crate) async fn open_group(dir: &Path, n: u64, snapshot_every: u64) -> GroupLog {
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
            tick: Duration::from_millis(20),
            election_tick: 10,
            heartbeat_tick: 2,
        };
        let db = sled::Config::new()
            .path(dir.join(id.to_string()))
            .open()
            .expect("open sled");
        let storage = SledStorage::open(db).expect("raft storage");
        let net = net.clone();
        let started = RaftLog::start(
            &cfg,
            storage,
            format!("sim-{id}"),
            TokenInject::new("suite").expect("token"),
            move |mailbox, _| net.attach(id, mailbox),
            StartOptions {
                // Head 1 times out first, so the suite does not wait for split votes.
                fixed_election_tick: Some(8 + 4 * id as usize),
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
