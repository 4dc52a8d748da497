//! [`GrpcTransport`]: outgoing Raft traffic over `Peer.Deliver`, one sender task per peer with a
//! bounded queue. A task batches what is queued into one `Peer.Deliver` call, and streams each
//! snapshot message through `Peer.DeliverSnapshot` in chunks ([`chunks::split`]); on failure it tells the node (unreachable, snapshot
//! failed), drops the batch (raft resends what matters) and backs off before the next call.
//! Channels connect lazily and reconnect by themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use xnai_proto::auth::TokenInject;
use xnai_proto::net::{self, Backoff, Traffic};
use xnai_proto::pb;
use xnai_proto::pb::peer_client::PeerClient;

use super::Transport;
use crate::raft::Peers;
use crate::raft::chunks::{self, SNAPSHOT_CHUNK_BYTES};
use crate::raft::mailbox::Msg;
use crate::raft::peer::PEER_MESSAGE_BYTES;

/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 1024;
/// Most messages in one Deliver call.
const MAX_BATCH: usize = 256;
/// How long one Deliver may take (snapshots get longer).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest transfer rate a snapshot stream is allowed before it times out.
const SNAPSHOT_BYTES_PER_SEC: u64 = 8 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(1);

struct Inner {
    me: u64,
    cluster_id: String,
    my_address: String,
    peers: Peers,
    token: TokenInject,
    node: mpsc::Sender<Msg>,
    senders: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
}

/// Sends raft messages to peers over gRPC. Cloning shares the senders.
#[derive(Clone)]
pub(crate) struct GrpcTransport(Arc<Inner>);

impl GrpcTransport {
    /// A transport for head `me`, addressing peers through `peers` and reporting delivery
    /// failures to the node's mailbox `node`.
    pub(crate) fn new(
        me: u64,
        cluster_id: String,
        my_address: String,
        peers: Peers,
        token: TokenInject,
        node: mpsc::Sender<Msg>,
    ) -> Self {
        Self(Arc::new(Inner {
            me,
            cluster_id,
            my_address,
            peers,
            token,
            node,
            senders: Mutex::new(HashMap::new()),
        }))
    }

    fn forget(&self, id: u64) {
        self.0
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn sender(&self, to: u64) -> Option<mpsc::Sender<Message>> {
        let mut map = self.0.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&to)
            && !tx.is_closed()
        {
            return Some(tx.clone());
        }
        let address = self.0.peers.get(to)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run_sender(self.0.clone(), to, address, rx));
        map.insert(to, tx.clone());
        Some(tx)
    }
}

impl Transport for GrpcTransport {
    /// Queue `messages` on their peers' senders (starting a sender on first use).
    fn send(&self, messages: Vec<Message>) {
        for m in messages {
            let to = m.to;
            if to == self.0.me || to == 0 {
                continue;
            }
            let Some(tx) = self.sender(to) else {
                tracing::debug!(to, "no address for head; message dropped");
                continue;
            };
            if tx.try_send(m).is_err() {
                tracing::debug!(to, "peer queue full; message dropped");
            }
        }
    }

    /// The address book already has the new address: drop any sender to an old one, so the
    /// next message connects afresh.
    fn add_peer(&self, id: u64, _address: &str) {
        self.forget(id);
    }

    /// Stop sending to a removed head (its sender task ends with its queue).
    fn remove_peer(&self, id: u64) {
        self.forget(id);
    }
}

type Client = PeerClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, TokenInject>,
>;

/// One `Deliver` call with `batch` (no snapshots).
async fn deliver(inner: &Inner, client: &mut Client, batch: &[Message]) -> Result<(), String> {
    let messages = batch
        .iter()
        .filter_map(|m| m.write_to_bytes().ok())
        .collect();
    let req = pb::PeerMessages {
        cluster_id: inner.cluster_id.clone(),
        from: inner.me,
        from_address: inner.my_address.clone(),
        messages,
    };
    match tokio::time::timeout(CALL_TIMEOUT, client.deliver(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        Err(_) => Err("timed out".to_string()),
    }
}

/// One `DeliverSnapshot` stream carrying `m` in chunks of `chunk` bytes; the time allowed grows
/// with the snapshot's size ([`SNAPSHOT_TIMEOUT`] plus a second per [`SNAPSHOT_BYTES_PER_SEC`]).
async fn deliver_snapshot(
    inner: &Inner,
    client: &mut Client,
    m: &Message,
    chunk: usize,
) -> Result<(), String> {
    let sender = chunks::Sender {
        cluster_id: &inner.cluster_id,
        from: inner.me,
        from_address: &inner.my_address,
    };
    let size = m.get_snapshot().get_data().len() as u64;
    let pieces = chunks::split(&sender, m, chunk)?;
    let limit = SNAPSHOT_TIMEOUT + Duration::from_secs(size / SNAPSHOT_BYTES_PER_SEC);
    let call = client.deliver_snapshot(tokio_stream::iter(pieces));
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(_)) => {
            tracing::info!(
                to = m.to,
                index = m.get_snapshot().get_metadata().index,
                bytes = size,
                "snapshot sent"
            );
            Ok(())
        }
        Ok(Err(s)) => Err(format!("snapshot: {:?}: {}", s.code(), s.message())),
        Err(_) => Err(format!(
            "snapshot of {size} bytes timed out after {limit:?}"
        )),
    }
}

async fn run_sender(inner: Arc<Inner>, to: u64, address: String, mut rx: mpsc::Receiver<Message>) {
    let channel = match net::lazy_channel(&address, Traffic::Peer) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(to, %address, error = %e, "bad peer address; not sending to it");
            return;
        }
    };
    let mut client = PeerClient::with_interceptor(channel, inner.token.clone())
        .max_decoding_message_size(PEER_MESSAGE_BYTES)
        .max_encoding_message_size(PEER_MESSAGE_BYTES);
    let mut backoff = Backoff::new(Duration::from_millis(50), MAX_BACKOFF);
    let mut failures: u32 = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let (snapshots, rest): (Vec<Message>, Vec<Message>) = batch
            .into_iter()
            .partition(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let snapshot = !snapshots.is_empty();
        let mut error = None;
        if !rest.is_empty() {
            error = deliver(&inner, &mut client, &rest).await.err();
        }
        for m in &snapshots {
            if error.is_some() {
                break;
            }
            error = deliver_snapshot(&inner, &mut client, m, SNAPSHOT_CHUNK_BYTES)
                .await
                .err();
        }
        match error {
            None => {
                if failures > 0 {
                    tracing::info!(to, %address, "peer reachable again");
                }
                failures = 0;
                backoff.reset();
                if snapshot {
                    let _ = inner.node.send(Msg::SnapshotSent(to, true)).await;
                }
            }
            Some(error) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(to, %address, failures, %error, "cannot reach peer head");
                }
                let _ = inner.node.send(Msg::Unreachable(to)).await;
                if snapshot {
                    let _ = inner.node.send(Msg::SnapshotSent(to, false)).await;
                }
                backoff.wait().await;
                // What queued meanwhile is stale; raft resends from its progress.
                while rx.try_recv().is_ok() {}
            }
        }
    }
}
