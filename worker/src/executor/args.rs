//! Argument resolution for tasks and actor constructors: inline bytes as they are; object
//! references from the local arena, else pulled from one of their locations (size and CRC-32
//! checked), kept as an evictable pulled copy and reported to the head.

use std::sync::Arc;

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

use super::Inner;
use crate::arena::{CopyKind, ObjectHandle};
use crate::error::{Result, WorkerError};
use crate::head_link::ReportedCopy;

/// One argument as the head sends it.
#[derive(Debug, Clone)]
pub enum TaskArgSpec {
    /// Bytes passed as they are.
    Inline(Bytes),
    /// An object, with where to find it.
    Object(ObjectRefSpec),
}

/// A referenced object: its id, expected size and checksum, and the peers holding it.
#[derive(Debug, Clone)]
pub struct ObjectRefSpec {
    /// The object.
    pub id: ObjectId,
    /// Expected size in bytes.
    pub size: u64,
    /// Expected CRC-32.
    pub crc32: u32,
    /// `host:port` of workers holding a copy.
    pub locations: Vec<String>,
}

/// Pins on the referenced argument objects; they cannot be evicted while this lives.
pub struct Pins(#[allow(dead_code)] Vec<ObjectHandle>);

pub(super) async fn resolve(
    inner: &Arc<Inner>,
    args: Vec<TaskArgSpec>,
) -> Result<(Vec<Bytes>, Pins)> {
    let mut out = Vec::with_capacity(args.len());
    let mut pins = Vec::new();
    for arg in args {
        match arg {
            TaskArgSpec::Inline(b) => out.push(b),
            TaskArgSpec::Object(spec) => {
                let handle = local_or_pull(inner, &spec).await?;
                out.push(handle.bytes().clone());
                pins.push(handle);
            }
        }
    }
    Ok((out, Pins(pins)))
}

async fn local_or_pull(inner: &Arc<Inner>, spec: &ObjectRefSpec) -> Result<ObjectHandle> {
    match inner.arena.get_async(&spec.id).await {
        Ok(h) => return Ok(h),
        Err(WorkerError::ObjectNotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if spec.locations.is_empty() {
        return Err(WorkerError::ObjectUnavailable {
            object: spec.id,
            reason: "it is not here and no location was given".into(),
        });
    }
    let mut failures = Vec::new();
    for address in &spec.locations {
        let mut writer = inner
            .arena
            .writer_async(spec.id, spec.size, CopyKind::Pulled)
            .await?;
        let pulled = inner.puller.pull(address, spec.id, &mut writer).await;
        let committed = pulled.and_then(|()| writer.commit(Some(spec.crc32)));
        match committed {
            Ok(meta) => {
                tracing::debug!(object_id = %spec.id, from = %address, size = meta.size, "pulled argument");
                let report = inner
                    .reporter
                    .object_added(spec.id, meta, ReportedCopy::Pulled);
                let id = spec.id;
                tokio::spawn(async move {
                    if let Err(e) = report.await {
                        tracing::warn!(object_id = %id, error = %e, "could not report a pulled copy");
                    }
                });
                return inner.arena.get(&spec.id);
            }
            Err(e) => {
                tracing::warn!(object_id = %spec.id, from = %address, error = %e, "pull failed");
                failures.push(format!("{address}: {e}"));
            }
        }
    }
    Err(WorkerError::ObjectUnavailable {
        object: spec.id,
        reason: failures.join("; "),
    })
}
