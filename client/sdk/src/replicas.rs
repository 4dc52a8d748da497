//! Objects stored under an id the caller chooses, on several workers at once: how a retrieval
//! actor keeps its index segments where a restarted actor finds them (deterministic ids) and
//! where one worker's death does not lose them (replicas on distinct workers).

use bytes::Bytes;
use xnai_proto::ids::ObjectId;
use xnai_proto::pb::{self, put_object_chunk::Kind};

use super::Client;
use super::error::{Error, Result};
use super::link::head_call;
use super::objects::check_put_reply;
use super::types::ObjectRef;

impl Client {
    /// Stores `data` as put object `id` (low byte 00) on up to `replicas` distinct live workers:
    /// the one the head picks, then others. Returns how many copies were stored; fails only if
    /// none was. Putting an id again with the same bytes is harmless (the copy is kept).
    pub async fn put_replicated(
        &self,
        id: ObjectId,
        data: Bytes,
        replicas: usize,
    ) -> Result<usize> {
        if id.producing_task().is_some() {
            return Err(Error::InvalidArgument(format!(
                "object id {id} names a task output; put ids end in 00"
            )));
        }
        let size = data.len() as u64;
        let pick = pb::PickPutTargetRequest { size };
        let first = head_call!(self.inner.head, pick_put_target, pick)
            .await?
            .address;
        let mut targets = vec![first];
        if replicas > 1 {
            let status = self.status().await?;
            let others: Vec<String> = status
                .workers
                .iter()
                .filter(|w| w.state == "alive" && !targets.contains(&w.address))
                .map(|w| w.address.clone())
                .take(replicas - 1)
                .collect();
            targets.extend(others);
        }
        let mut stored = 0;
        let mut last = None;
        for address in &targets {
            match self.put_at(address, id, data.clone()).await {
                Ok(_) => stored += 1,
                Err(e) => {
                    tracing::warn!(object = %id, address = %address, "replica put failed: {e}");
                    last = Some(e);
                }
            }
        }
        match (stored, last) {
            (0, Some(e)) => Err(e),
            (n, _) => Ok(n),
        }
    }

    /// Streams `data` as object `id` to the worker at `address`.
    async fn put_at(&self, address: &str, id: ObjectId, data: Bytes) -> Result<ObjectRef> {
        let size = data.len() as u64;
        let crc = crc32fast::hash(&data);
        let mut stub = self.inner.workers.stub(address)?;
        let head = pb::PutObjectChunk {
            kind: Some(Kind::Header(pb::PutObjectHeader {
                size,
                crc32: Some(crc),
                object_id: id.hex(),
            })),
        };
        let stream = tokio_stream::iter(std::iter::once(head).chain(super::objects::chunked(data)));
        let reply = stub.put_object(stream).await?.into_inner();
        let stored = check_put_reply(reply, size, crc)?;
        if stored.id() != id {
            return Err(Error::Protocol(format!(
                "worker stored object {} instead of {id}",
                stored.id()
            )));
        }
        Ok(stored)
    }
}
