//! `--add-head`: after the soak, start a fresh head with an empty data directory (`--join`),
//! add it with AddHead, and wait (with a deadline) until it has applied the leader's commit
//! index; reports how long that took and whether it caught up by installing a snapshot (its
//! log says "installed a snapshot") rather than by replaying the log.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::transport::Channel;
use xnai_proto::auth::TokenInject;
use xnai_proto::pb::peer_client::PeerClient;
use xnai_tests::Cluster;

/// How the added head caught up.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Its Raft id.
    pub id: u64,
    /// Its pid (for RSS samples).
    pub pid: u32,
    /// The leader's commit index it had to reach.
    pub target: u64,
    /// From AddHead to applied >= target (None: the deadline passed).
    pub caught_up_after: Option<Duration>,
    /// Whether its log shows a snapshot install.
    pub by_snapshot: bool,
}

/// The head process started for the join; killed when dropped.
pub struct JoinedHead {
    child: Child,
    /// Its log file.
    pub log: std::path::PathBuf,
}

impl Drop for JoinedHead {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One head's own Raft view (the Peer service's Status).
async fn peer_status(address: &str, token: &str) -> Result<xnai_proto::pb::PeerStatusReply> {
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut p = PeerClient::with_interceptor(channel, TokenInject::new(token)?);
    Ok(p.status(xnai_proto::pb::PeerStatusRequest {})
        .await?
        .into_inner())
}

/// Start head `id` with `--join` and an empty data directory; wait until it serves.
pub async fn start(cluster: &Cluster, id: u64) -> Result<(JoinedHead, String)> {
    let dir = cluster.data_dir.path();
    let cluster_id = cluster.cluster_file()?["cluster_id"]
        .as_str()
        .context("cluster.json has no cluster_id")?
        .to_string();
    let addr_file = dir.join(format!("head-{id}.addr"));
    let log_path = dir.join(format!("head-{id}.log"));
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(cluster.bin_dir().join("xnai-head"))
        .args(["--id", &id.to_string(), "--listen", "127.0.0.1:0", "--join"])
        .args(["--cluster-id", &cluster_id])
        .arg("--data-dir")
        .arg(dir.join(format!("head-{id}")))
        .arg("--addr-file")
        .arg(&addr_file)
        .env("XNAI_TOKEN", &cluster.token)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the added head")?;
    let head = JoinedHead {
        child,
        log: log_path,
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() {
        if Instant::now() > end {
            bail!("head {id} did not write {}", addr_file.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr = std::fs::read_to_string(&addr_file)?.trim().to_string();
    Ok((head, addr))
}

/// Add the started head and wait until it applied the leader's commit index at that moment.
pub async fn catch_up(
    client: &xnai_sdk::Client,
    cluster: &Cluster,
    head: &JoinedHead,
    address: &str,
    deadline: Duration,
) -> Result<Joined> {
    let added = Instant::now();
    let id = client.add_head(address).await?;
    let st = client.status().await?;
    let leader = st
        .heads
        .iter()
        .find(|h| h.role == "leader")
        .context("no leader after AddHead")?;
    let target = peer_status(&leader.address, &cluster.token)
        .await?
        .commit_index;
    let mut caught_up_after = None;
    let mut pid = 0;
    while added.elapsed() < deadline {
        if let Ok(s) = peer_status(address, &cluster.token).await {
            pid = s.pid;
            if s.applied_index >= target {
                caught_up_after = Some(added.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&head.log).unwrap_or_default();
    Ok(Joined {
        id,
        pid,
        target,
        caught_up_after,
        by_snapshot: log.contains("installed a snapshot"),
    })
}
