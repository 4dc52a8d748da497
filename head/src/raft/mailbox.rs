//! The Raft node's mailbox: the one message enum ([`Msg`]) the node task reads, and the reply
//! channels it answers on. A leaf module (it names no other part of `raft`), so the peer
//! service, the transports and the handle can all feed the node without depending on it.

use raft::eraftpb::{ConfChange, Message};
use tokio::sync::oneshot;

use crate::log::LogError;
use crate::state::{Command, Outcome};

/// A proposal's reply channel: the outcomes of its commands, in order.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Outcome>, LogError>>;

/// A ReadIndex request's reply channel: the index the reader must wait for.
pub(crate) type ReadReply = oneshot::Sender<Result<u64, LogError>>;

/// A membership change's reply channel: answered once the change is applied.
pub(crate) type ConfReply = oneshot::Sender<Result<(), LogError>>;

/// Everything the node task is asked to do.
pub(crate) enum Msg {
    /// Commands from a local writer.
    Propose {
        /// The commands, applied together in order.
        commands: Vec<Command>,
        /// Where the outcomes go.
        reply: Reply,
    },
    /// Raft messages from a peer (already checked by the peer service).
    FromPeer {
        /// Sender id.
        from: u64,
        /// Sender's address, learnt if new.
        address: String,
        /// The messages.
        messages: Vec<Message>,
    },
    /// A linearizable read: answers the read index once confirmed by a quorum.
    ReadIndex(ReadReply),
    /// A membership change (add with the address as context, or remove).
    ConfChange {
        /// The change.
        change: ConfChange,
        /// Answered once applied.
        reply: ConfReply,
    },
    /// The transport could not reach a peer.
    Unreachable(u64),
    /// A snapshot message to a peer was delivered (true) or not.
    SnapshotSent(u64, bool),
    /// A snapshot build off the node's loop ended: take its result now (a wake-up only; the
    /// node also looks on every tick).
    SnapshotBuilt,
}

/// LogError is not Clone (it wraps sled errors); rebuild the retriable ones.
pub(crate) fn clone_err(e: &LogError) -> LogError {
    match e {
        LogError::NotLeader { leader } => LogError::NotLeader {
            leader: leader.clone(),
        },
        LogError::Closed => LogError::Closed,
        LogError::Failed(m) => LogError::Failed(m.clone()),
        LogError::Membership(m) => LogError::Membership(m.clone()),
        other => LogError::Encode {
            what: "proposal",
            reason: other.to_string(),
        },
    }
}
