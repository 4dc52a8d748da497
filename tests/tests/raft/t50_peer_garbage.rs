//! Garbage on the peer service is refused with a clear status and does not harm the group:
//! a wrong cluster id, an unknown sender, bytes that are not a raft message, a message that
//! claims another sender, and a call without the token. The leader and term stay the same and
//! the group keeps serving.

use anyhow::{Result, ensure};
use tonic::Code;
use xnai_proto::pb;
use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

use crate::common::{peer_status, peer_stub, runtime};

#[test]
fn t50_garbage_on_the_peer_service_is_refused() -> Result<()> {
    init_tracing();
    let c = start_cluster(ClusterOptions {
        heads: 3,
        workers: 1,
        arena_bytes: "64MiB".into(),
    })?;
    let rt = runtime()?;
    let leader = c.leader()?;
    let before = rt.block_on(peer_status(&leader.address, &c.token))?;
    let cluster_id = c.cluster_file()?["cluster_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let other = c
        .head_procs()?
        .into_iter()
        .find(|h| h.id != leader.id)
        .ok_or_else(|| anyhow::anyhow!("no follower"))?;
    let msg = |cluster: &str, from: u64, messages: Vec<Vec<u8>>| pb::PeerMessages {
        cluster_id: cluster.to_string(),
        from,
        from_address: "127.0.0.1:1".into(),
        messages,
    };
    let cases = [
        (
            "wrong cluster",
            msg("another-cluster", other.id, vec![]),
            Code::FailedPrecondition,
            "cluster id mismatch",
        ),
        (
            "unknown sender",
            msg(&cluster_id, 99, vec![]),
            Code::PermissionDenied,
            "not a member",
        ),
        (
            "garbage bytes",
            msg(&cluster_id, other.id, vec![vec![0xff; 64]]),
            Code::InvalidArgument,
            "not a raft message",
        ),
        (
            "spoofed sender",
            msg(&cluster_id, other.id, vec![spoofed(leader.id)]),
            Code::InvalidArgument,
            "goes from head",
        ),
    ];
    for target in [&leader, &other] {
        for (what, req, code, text) in cases.iter().cloned() {
            if target.id == other.id && what != "wrong cluster" {
                continue;
            }
            let mut p = rt.block_on(peer_stub(&target.address, &c.token))?;
            let err = rt
                .block_on(p.deliver(req))
                .err()
                .ok_or_else(|| anyhow::anyhow!("{what}: accepted"))?;
            ensure!(err.code() == code, "{what}: {err:?}");
            ensure!(err.message().contains(text), "{what}: {}", err.message());
        }
    }
    let mut anon = rt.block_on(peer_stub(&leader.address, ""))?;
    let err = rt
        .block_on(anon.status(pb::PeerStatusRequest {}))
        .err()
        .ok_or_else(|| anyhow::anyhow!("a call without the token was answered"))?;
    ensure!(err.code() == Code::Unauthenticated, "{err:?}");

    // The group did not notice.
    ensure!(c.xnai_ok(&["run", "echo", "still", "fine"])? == "still fine");
    let after = rt.block_on(peer_status(&leader.address, &c.token))?;
    ensure!(
        after.role == "leader" && after.term == before.term,
        "{before:?} -> {after:?}"
    );
    Ok(())
}

/// A well-formed raft heartbeat (eraftpb.Message: msg_type=8, to, from=7, term=100), encoded
/// by hand, that claims to come from head 7 while the batch says another head sent it.
fn spoofed(to: u64) -> Vec<u8> {
    vec![0x08, 8, 0x10, to as u8, 0x18, 7, 0x20, 100]
}
