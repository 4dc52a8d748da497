//! `xnai.v1.Peer`: the head-to-head service. `Deliver` checks the cluster id, the sender and
//! every message before any reaches the node (a bad batch is refused whole, with a status that
//! says why, and the group never sees it); `DeliverSnapshot` does the same for one snapshot
//! message streamed in chunks (reassembled and decoded by [`super::chunks::Reassembly`] first);
//! `Identify` and `Status` describe this head. Also the client side of `Identify`/`Status` used
//! by AddHead and ClusterStatus.

use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use xnai_proto::auth::TokenInject;
use xnai_proto::net::{self, Traffic};
use xnai_proto::pb;
use xnai_proto::pb::peer_client::PeerClient;

use super::NodeStatus;
use super::chunks::Reassembly;
use super::mailbox::Msg;

/// Largest peer message: a batch of raft messages (up to 256 appends of about 1 MiB each).
/// Snapshots are not bound by it: they travel in chunks of
/// [`super::chunks::SNAPSHOT_CHUNK_BYTES`] through `DeliverSnapshot`.
pub const PEER_MESSAGE_BYTES: usize = 256 << 20;
/// How long Identify/Status calls to another head may take.
const QUERY_TIMEOUT: Duration = Duration::from_millis(800);

/// The Peer service handlers.
pub struct PeerApi {
    id: u64,
    cluster_id: String,
    node: mpsc::Sender<Msg>,
    status: watch::Receiver<NodeStatus>,
    max_snapshot_bytes: u64,
}

impl PeerApi {
    pub(crate) fn new(
        id: u64,
        cluster_id: String,
        node: mpsc::Sender<Msg>,
        status: watch::Receiver<NodeStatus>,
        max_snapshot_bytes: u64,
    ) -> Self {
        Self {
            id,
            cluster_id,
            node,
            status,
            max_snapshot_bytes,
        }
    }

    /// Check the sender: same cluster, another head, a member (or anyone while this head waits
    /// to join).
    fn check_sender(&self, cluster_id: &str, from: u64) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: head {} belongs to cluster {:?}, the sender (head {from}) to {cluster_id:?}",
                self.id, self.cluster_id
            )));
        }
        if from == 0 || from == self.id {
            return Err(Status::invalid_argument(format!(
                "bad sender id {from}: must be another head's non-zero id"
            )));
        }
        let voters = self.status.borrow().voters.clone();
        // A head waiting to join knows no members yet: it accepts the leader that adds it.
        if !voters.is_empty() && !voters.contains(&from) {
            return Err(Status::permission_denied(format!(
                "head {from} is not a member of this group (members: {voters:?})"
            )));
        }
        Ok(())
    }

    /// Check a batch and decode it; the error says what is wrong.
    fn check(&self, r: &pb::PeerMessages) -> Result<Vec<Message>, Status> {
        self.check_sender(&r.cluster_id, r.from)?;
        let mut out = Vec::with_capacity(r.messages.len());
        for (i, bytes) in r.messages.iter().enumerate() {
            let m = Message::parse_from_bytes(bytes).map_err(|e| {
                Status::invalid_argument(format!("message {i} is not a raft message: {e}"))
            })?;
            if m.from != r.from || m.to != self.id {
                return Err(Status::invalid_argument(format!(
                    "message {i} goes from head {} to head {}, but the batch is from head {} to head {}",
                    m.from, m.to, r.from, self.id
                )));
            }
            out.push(m);
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerApi {
    async fn deliver(
        &self,
        req: Request<pb::PeerMessages>,
    ) -> Result<Response<pb::PeerAck>, Status> {
        let r = req.into_inner();
        let messages = self.check(&r).inspect_err(|s| {
            tracing::warn!(from = r.from, error = %s.message(), "refused peer traffic");
        })?;
        self.node
            .send(Msg::FromPeer {
                from: r.from,
                address: r.from_address,
                messages,
            })
            .await
            .map_err(|_| Status::unavailable("this head is shutting down"))?;
        Ok(Response::new(pb::PeerAck {}))
    }

    async fn deliver_snapshot(
        &self,
        req: Request<tonic::Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::PeerAck>, Status> {
        let mut stream = req.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let from = first.from;
        let received = async {
            self.check_sender(&first.cluster_id, first.from)?;
            let mut r = Reassembly::start(first, self.id, self.max_snapshot_bytes)?;
            while let Some(chunk) = stream.message().await? {
                r.push(&chunk.data)?;
            }
            let address = r.from_address.clone();
            Ok::<_, Status>((address, r.finish()?))
        }
        .await;
        let (address, message) = received.inspect_err(|s| {
            tracing::warn!(from, error = %s.message(), "refused a snapshot from a peer");
        })?;
        tracing::info!(
            from,
            index = message.get_snapshot().get_metadata().index,
            bytes = message.get_snapshot().get_data().len(),
            "snapshot received from a peer"
        );
        self.node
            .send(Msg::FromPeer {
                from,
                address,
                messages: vec![message],
            })
            .await
            .map_err(|_| Status::unavailable("this head is shutting down"))?;
        Ok(Response::new(pb::PeerAck {}))
    }

    async fn identify(
        &self,
        _req: Request<pb::IdentifyRequest>,
    ) -> Result<Response<pb::IdentifyReply>, Status> {
        let address = self.status.borrow().address.clone();
        Ok(Response::new(pb::IdentifyReply {
            id: self.id,
            cluster_id: self.cluster_id.clone(),
            address,
        }))
    }

    async fn status(
        &self,
        _req: Request<pb::PeerStatusRequest>,
    ) -> Result<Response<pb::PeerStatusReply>, Status> {
        let s = self.status.borrow().clone();
        Ok(Response::new(status_to_pb(&s)))
    }
}

/// A node status on the wire.
pub fn status_to_pb(s: &NodeStatus) -> pb::PeerStatusReply {
    pb::PeerStatusReply {
        id: s.id,
        role: s.role.clone(),
        term: s.term,
        commit_index: s.commit,
        pid: s.pid,
        leader_id: s.leader_id,
        applied_index: s.applied,
        address: s.address.clone(),
    }
}

fn client(
    address: &str,
    token: &TokenInject,
) -> Result<
    PeerClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, TokenInject>,
    >,
    String,
> {
    let channel = net::lazy_channel(address, Traffic::Peer).map_err(|e| e.to_string())?;
    Ok(PeerClient::with_interceptor(channel, token.clone()))
}

/// Ask the head at `address` who it is: (id, cluster id).
pub async fn identify(address: &str, token: &TokenInject) -> Result<(u64, String), String> {
    let mut c = client(address, token)?;
    let r = tokio::time::timeout(QUERY_TIMEOUT * 3, c.identify(pb::IdentifyRequest {}))
        .await
        .map_err(|_| format!("{address} did not answer Identify in time"))?
        .map_err(|s| format!("{address}: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    Ok((r.id, r.cluster_id))
}

/// The Raft view of the head at `address`.
pub async fn peer_status(
    address: &str,
    token: &TokenInject,
) -> Result<pb::PeerStatusReply, String> {
    let mut c = client(address, token)?;
    let r = tokio::time::timeout(QUERY_TIMEOUT, c.status(pb::PeerStatusRequest {}))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    Ok(r.into_inner())
}
