//! Snapshot messages in pieces: [`split`] turns a raft `MsgSnapshot` into a header chunk and data
//! chunks of a bounded size (`Peer.DeliverSnapshot` streams them; the simulation passes them over
//! its in-process network with tiny chunks), and [`Reassembly`] puts them back together on the
//! receiver, refusing a stream that is too big, out of shape, or whose SHA-256 differs, and
//! decoding the snapshot data before the group ever sees the message. Both sides are pure (no
//! I/O), so they are unit-tested here and shared by every transport.

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use sha2::{Digest, Sha256};
use tonic::Status;
use xnai_proto::pb;

use super::codec::decode_snapshot;

/// Bytes of snapshot data per chunk on the wire.
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;
/// Default largest snapshot a head accepts from a peer (`--max-snapshot-bytes`).
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 2 << 30;

/// Who sends the snapshot (the first chunk's header).
#[derive(Debug, Clone)]
pub(crate) struct Sender<'a> {
    pub(crate) cluster_id: &'a str,
    pub(crate) from: u64,
    pub(crate) from_address: &'a str,
}

/// The chunks of `msg` (a `MsgSnapshot`): the first carries the header and the message with empty
/// snapshot data; the data follows in pieces of at most `chunk` bytes (at least one byte).
pub(crate) fn split(
    sender: &Sender<'_>,
    msg: &Message,
    chunk: usize,
) -> Result<Vec<pb::SnapshotChunk>, String> {
    let data = msg.get_snapshot().get_data();
    let mut head = msg.clone();
    head.mut_snapshot().set_data(Default::default());
    let header = head.write_to_bytes().map_err(|e| e.to_string())?;
    let mut out = vec![pb::SnapshotChunk {
        cluster_id: sender.cluster_id.to_string(),
        from: sender.from,
        from_address: sender.from_address.to_string(),
        message: header,
        total_bytes: data.len() as u64,
        sha256: Sha256::digest(data).to_vec(),
        data: Vec::new(),
    }];
    for piece in data.chunks(chunk.max(1)) {
        out.push(pb::SnapshotChunk {
            data: piece.to_vec(),
            ..Default::default()
        });
    }
    Ok(out)
}

/// A snapshot message being received: checked header, data so far.
#[derive(Debug)]
pub(crate) struct Reassembly {
    /// The sender's address.
    pub(crate) from_address: String,
    message: Message,
    total: u64,
    sha256: Vec<u8>,
    data: Vec<u8>,
}

impl Reassembly {
    /// Start from the first chunk (cluster id and sender already checked by the caller), refusing
    /// a snapshot larger than `max` bytes or a header that is not a snapshot message.
    pub(crate) fn start(first: pb::SnapshotChunk, me: u64, max: u64) -> Result<Self, Status> {
        let message = Message::parse_from_bytes(&first.message).map_err(|e| {
            Status::invalid_argument(format!("the snapshot header is not a raft message: {e}"))
        })?;
        if message.get_msg_type() != MessageType::MsgSnapshot {
            return Err(Status::invalid_argument(format!(
                "DeliverSnapshot carries {:?}, not a snapshot message",
                message.get_msg_type()
            )));
        }
        if message.from != first.from || message.to != me {
            return Err(Status::invalid_argument(format!(
                "the snapshot goes from head {} to head {}, but the stream is from head {} to head {me}",
                message.from, message.to, first.from
            )));
        }
        if first.total_bytes > max {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {} bytes is larger than this head accepts ({max} bytes, --max-snapshot-bytes)",
                first.total_bytes
            )));
        }
        if first.sha256.len() != 32 {
            return Err(Status::invalid_argument(
                "the snapshot header has no SHA-256",
            ));
        }
        let mut r = Self {
            from_address: first.from_address,
            message,
            total: first.total_bytes,
            sha256: first.sha256,
            data: Vec::with_capacity(first.total_bytes.min(64 << 20) as usize),
        };
        r.push(&first.data)?;
        Ok(r)
    }

    /// Add the next piece of data.
    pub(crate) fn push(&mut self, piece: &[u8]) -> Result<(), Status> {
        if self.data.len() as u64 + piece.len() as u64 > self.total {
            return Err(Status::invalid_argument(format!(
                "the snapshot stream holds more than the {} bytes its header announced",
                self.total
            )));
        }
        self.data.extend_from_slice(piece);
        Ok(())
    }

    /// The whole message, once the data is complete, matches its digest and decodes.
    pub(crate) fn finish(mut self) -> Result<Message, Status> {
        if self.data.len() as u64 != self.total {
            return Err(Status::invalid_argument(format!(
                "the snapshot stream ended after {} of {} bytes",
                self.data.len(),
                self.total
            )));
        }
        if Sha256::digest(&self.data).as_slice() != self.sha256.as_slice() {
            return Err(Status::data_loss(
                "the snapshot data does not match its SHA-256",
            ));
        }
        let index = self.message.get_snapshot().get_metadata().index;
        decode_snapshot(index, &self.data).map_err(|e| {
            Status::invalid_argument(format!("the snapshot data does not decode: {e}"))
        })?;
        self.message.mut_snapshot().set_data(self.data.into());
        Ok(self.message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::raft::codec::encode_snapshot;
    use crate::state::ControlState;

    const ME: u64 = 2;

    fn snapshot_message(data: Vec<u8>) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        m.from = 1;
        m.to = ME;
        m.term = 3;
        let s = m.mut_snapshot();
        s.mut_metadata().index = 40;
        s.mut_metadata().term = 3;
        s.set_data(data.into());
        m
    }

    fn valid_data() -> Vec<u8> {
        let peers: BTreeMap<u64, String> =
            (1..200).map(|i| (i, format!("10.0.0.{i}:7000"))).collect();
        encode_snapshot(40, &ControlState::default(), &peers).expect("encode")
    }

    fn sender() -> Sender<'static> {
        Sender {
            cluster_id: "c",
            from: 1,
            from_address: "h1:1",
        }
    }

    fn reassemble(chunks: Vec<pb::SnapshotChunk>, max: u64) -> Result<Message, Status> {
        let mut it = chunks.into_iter();
        let mut r = Reassembly::start(it.next().expect("header"), ME, max)?;
        for c in it {
            r.push(&c.data)?;
        }
        r.finish()
    }

    #[test]
    fn a_snapshot_survives_small_chunks() {
        let m = snapshot_message(valid_data());
        let chunks = split(&sender(), &m, 100).expect("split");
        assert!(chunks.len() > 10, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.data.len() <= 100));
        let back = reassemble(chunks, 1 << 20).expect("reassembled");
        assert_eq!(back, m);
    }

    #[test]
    fn too_big_truncated_or_altered_streams_are_refused() {
        let m = snapshot_message(valid_data());
        let chunks = split(&sender(), &m, 64).expect("split");
        let err = reassemble(chunks.clone(), 10).expect_err("too big");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");

        let mut short = chunks.clone();
        short.pop();
        let err = reassemble(short, 1 << 20).expect_err("truncated");
        assert!(err.message().contains("ended after"), "{err}");

        let mut altered = chunks.clone();
        altered[1].data[0] ^= 1;
        let err = reassemble(altered, 1 << 20).expect_err("altered");
        assert_eq!(err.code(), tonic::Code::DataLoss, "{err}");

        let mut extra = chunks;
        extra.push(pb::SnapshotChunk {
            data: vec![0],
            ..Default::default()
        });
        let err = reassemble(extra, 1 << 20).expect_err("too long");
        assert!(err.message().contains("more than"), "{err}");
    }

    #[test]
    fn data_that_does_not_decode_never_reaches_the_group() {
        let m = snapshot_message(vec![0xFF, 99, 1, 2, 3]);
        let err = reassemble(split(&sender(), &m, 4).expect("split"), 1 << 20)
            .expect_err("unknown format");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("format version 99"), "{err}");
    }
}
