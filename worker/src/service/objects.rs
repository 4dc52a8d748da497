//! Object streaming handlers: PutObject (header, then chunks written straight into a reserved
//! arena file; acknowledged only after the head recorded it; a stream idle for the put idle
//! timeout is failed and its reservation released) and FetchObject (1 MiB chunks cut from the
//! object's mmap, the first carrying total size and CRC-32).

use futures::StreamExt;
use tonic::Streaming;
use tracing::Instrument;
use xnai_proto::ids::ObjectId;
use xnai_proto::limits::CHUNK_BYTES;
use xnai_proto::pb;

use super::ChunkStream;
use crate::arena::{Arena, CopyKind, ObjectHandle, StoredMeta};
use crate::convert;
use crate::error::{Result, WorkerError};
use crate::head_link::{ObjectReporter, ReportedCopy};

/// Receive a put: reserve, write, verify, rename, report to the head, reply with the new id.
pub(super) async fn put(
    arena: &Arena,
    reporter: &dyn ObjectReporter,
    mut stream: Streaming<pb::PutObjectChunk>,
) -> Result<pb::PutObjectReply> {
    let idle = arena.put_idle_timeout();
    let idle_error = || WorkerError::PutIdle {
        secs: idle.as_secs_f64(),
    };
    let first = tokio::time::timeout(idle, stream.message())
        .await
        .map_err(|_| idle_error())?;
    let header = match first {
        Ok(Some(pb::PutObjectChunk {
            kind: Some(pb::put_object_chunk::Kind::Header(h)),
        })) => h,
        Ok(_) => {
            return Err(WorkerError::BadRequest(
                "PutObject: the first message must be the header".into(),
            ));
        }
        Err(s) => {
            return Err(WorkerError::BadRequest(format!(
                "PutObject: {}",
                s.message()
            )));
        }
    };
    let id = match header.object_id.as_str() {
        "" => ObjectId::random(),
        chosen => put_id(chosen)?,
    };
    if let Ok(held) = arena.get_async(&id).await {
        let meta = held.meta();
        if meta.size != header.size || header.crc32.is_some_and(|c| c != meta.crc32) {
            return Err(WorkerError::BadRequest(format!(
                "PutObject: object {id} is already here with other contents"
            )));
        }
        return Ok(pb::PutObjectReply {
            object_id: id.hex(),
            size: meta.size,
            crc32: meta.crc32,
        });
    }
    let span = tracing::info_span!("put_object", object_id = %id, size = header.size);
    async move {
        let mut writer = arena
            .writer_async(id, header.size, CopyKind::Primary)
            .await?;
        while let Some(msg) = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| idle_error())?
        {
            let msg =
                msg.map_err(|s| WorkerError::BadRequest(format!("PutObject: {}", s.message())))?;
            match msg.kind {
                Some(pb::put_object_chunk::Kind::Data(data)) => writer.write(&data)?,
                _ => {
                    return Err(WorkerError::BadRequest(
                        "PutObject: only the first message may be a header".into(),
                    ));
                }
            }
        }
        let meta = writer.commit(header.crc32)?;
        report_put(arena, reporter, id, meta).await
    }
    .instrument(span)
    .await
}

/// Record a stored put at the head (dropping it if the head refuses) and build the reply: a put
/// is acknowledged only once the head has logged its copy.
pub(super) async fn report_put(
    arena: &Arena,
    reporter: &dyn ObjectReporter,
    id: ObjectId,
    meta: StoredMeta,
) -> Result<pb::PutObjectReply> {
    if let Err(e) = reporter.object_added(id, meta, ReportedCopy::Put).await {
        arena.delete(&[id]);
        return Err(e);
    }
    tracing::debug!(object_id = %id, crc32 = meta.crc32, "put stored and reported");
    Ok(pb::PutObjectReply {
        object_id: id.hex(),
        size: meta.size,
        crc32: meta.crc32,
    })
}

/// Parses a sender-chosen put id: a valid object id with the put mark (low byte 00).
fn put_id(chosen: &str) -> Result<ObjectId> {
    let id = convert::object_id(chosen)?;
    if id.producing_task().is_some() {
        return Err(WorkerError::BadRequest(format!(
            "PutObject: id {chosen} names a task output; put ids end in 00"
        )));
    }
    Ok(id)
}

/// Stream an object out of the arena; it stays pinned until the stream ends or is dropped. A
/// spilled object is restored on the blocking pool first (an error then comes as the stream's
/// first item rather than as the call's status).
pub(super) fn fetch(arena: &Arena, id: ObjectId) -> Result<ChunkStream> {
    let _span = tracing::debug_span!("fetch_object", object_id = %id).entered();
    if arena.is_spilled(&id) {
        let arena = arena.clone();
        let restored = async move { arena.get_async(&id).await.map(chunks) };
        let stream = futures::stream::once(restored).map(|r| match r {
            Ok(s) => s,
            Err(e) => {
                let status = tonic::Status::from(e);
                Box::pin(futures::stream::iter([Err(status)])) as ChunkStream
            }
        });
        return Ok(Box::pin(stream.flatten()));
    }
    Ok(chunks(arena.get(&id)?))
}

/// 1 MiB chunks cut from a pinned object's bytes; the first carries total size and CRC-32.
fn chunks(handle: ObjectHandle) -> ChunkStream {
    tracing::debug!(size = handle.meta().size, "streaming object");
    let meta = handle.meta();
    let bytes = handle.bytes().clone();
    let len = bytes.len();
    let count = len.div_ceil(CHUNK_BYTES).max(1);
    let stream = futures::stream::iter(0..count).map(move |i| {
        let _pin = &handle;
        let start = i * CHUNK_BYTES;
        let end = (start + CHUNK_BYTES).min(len);
        let first = i == 0;
        Ok(pb::ObjectChunk {
            offset: start as u64,
            data: convert::to_wire(bytes.slice(start..end)),
            total_size: if first { meta.size } else { 0 },
            crc32: if first { meta.crc32 } else { 0 },
        })
    });
    Box::pin(stream)
}
