//! The head's honest health: the standard health service follows the Raft node's view. The
//! overall status, `Head` and `WorkerRegistry` are SERVING only while this head leads with
//! quorum or follows a leader it heard from within an election timeout; `Peer` is SERVING while
//! the Raft node task runs. Once the node task is gone, everything is NOT_SERVING.

use tokio::sync::watch;
use xnai_proto::serve::NodeHealth;
use xnai_proto::serve::health::{HEAD_SERVICE, OVERALL, PEER_SERVICE, REGISTRY_SERVICE};

use crate::raft::NodeStatus;

/// The names whose status follows "reaches a leader".
pub const CLIENT_FACING: [&str; 3] = [OVERALL, HEAD_SERVICE, REGISTRY_SERVICE];
/// Every name a head answers for, overall included.
pub const ALL: [&str; 4] = [OVERALL, HEAD_SERVICE, REGISTRY_SERVICE, PEER_SERVICE];

/// A short reason for a status, for the log line of a transition.
fn reason(s: &NodeStatus) -> String {
    if s.reaches_leader && s.role == "leader" {
        format!("leading term {} with a quorum", s.term)
    } else if s.reaches_leader {
        format!("following head {} (term {})", s.leader_id, s.term)
    } else if s.role == "leader" {
        "leader not ready yet (no entry of its term applied)".to_string()
    } else if s.leader_id == 0 {
        format!("{} with no known leader (term {})", s.role, s.term)
    } else {
        format!(
            "no word from leader {} within an election timeout",
            s.leader_id
        )
    }
}

/// Follow `status` into `health` until the node task ends; then mark every service NOT_SERVING
/// and wait (the node task's own supervision reports why it ended).
pub async fn follow(mut status: watch::Receiver<NodeStatus>, health: NodeHealth) {
    loop {
        let (serving, why) = {
            let s = status.borrow_and_update();
            (s.reaches_leader, reason(&s))
        };
        health.set(&CLIENT_FACING, serving, &why).await;
        health
            .set(&[PEER_SERVICE], true, "the raft node task runs")
            .await;
        if status.changed().await.is_err() {
            break;
        }
    }
    health.set(&ALL, false, "the raft node task is gone").await;
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use xnai_proto::serve::{ServerRole, incoming, probe, server};

    use super::*;

    #[tokio::test]
    async fn follows_the_node_view_and_drops_when_the_node_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (health, svc) = NodeHealth::new(&ALL[1..]).await;
        tokio::spawn(
            server(ServerRole::Head)
                .add_service(svc)
                .serve_with_incoming(incoming(listener)),
        );
        let (tx, rx) = watch::channel(NodeStatus::default());
        let follower = tokio::spawn(follow(rx, health.clone()));
        let t = Duration::from_secs(5);
        let wait = |service: &'static str, want: bool| {
            let addr = addr.clone();
            async move {
                let end = tokio::time::Instant::now() + t;
                while probe(&addr, service, t).await.unwrap() != want {
                    assert!(tokio::time::Instant::now() < end, "{service} never {want}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        wait(PEER_SERVICE, true).await;
        assert!(!probe(&addr, "", t).await.unwrap());
        tx.send_modify(|s| {
            s.role = "follower".into();
            s.leader_id = 2;
            s.reaches_leader = true;
        });
        wait("", true).await;
        wait(HEAD_SERVICE, true).await;
        tx.send_modify(|s| s.reaches_leader = false);
        wait(REGISTRY_SERVICE, false).await;
        tx.send_modify(|s| s.reaches_leader = true);
        wait("", true).await;
        drop(tx);
        wait("", false).await;
        wait(PEER_SERVICE, false).await;
        follower.abort();
    }
}
