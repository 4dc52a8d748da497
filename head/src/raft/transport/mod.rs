//! How the node reaches its peers: the [`Transport`] trait (send raft messages, learn and forget
//! peers), its gRPC implementation ([`grpc::GrpcTransport`], one sender task per peer) and, for
//! tests, an in-process network that can isolate, cut, heal, delay and drop ([`sim`]).

pub(crate) mod grpc;
#[cfg(test)]
pub(crate) mod sim;

use raft::eraftpb::Message;

/// Outgoing Raft traffic of one head. The node task calls it and never waits on it: sending
/// queues or drops, and delivery problems come back to the node as mailbox messages
/// (`Unreachable`, `SnapshotSent`). Raft tolerates loss, duplication and reordering.
pub trait Transport: Send + 'static {
    /// Queue `messages` for their recipients (`Message::to`); messages to this head or to id 0
    /// are ignored.
    fn send(&self, messages: Vec<Message>);

    /// Head `id` joined the group at `address` (or moved there).
    fn add_peer(&self, id: u64, address: &str);

    /// Head `id` left the group: stop sending to it.
    fn remove_peer(&self, id: u64);
}
