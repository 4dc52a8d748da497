//! The `LocalArena` gRPC service: thin handlers for same-host clients that map arena files
//! instead of streaming them (reads) and write puts straight into a reserved arena file
//! (writes). The logic is the arena's ([`Arena::file_of`], [`LocalPuts`]); a sealed put is
//! recorded at the head exactly like a streamed one before it is acknowledged.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::Instrument;
use xnai_proto::pb;

use super::objects::report_put;
use crate::arena::{Arena, LocalPuts};
use crate::convert;
use crate::error::WorkerError;
use crate::head_link::ObjectReporter;

/// The worker's `LocalArena` service. Cheap to clone.
#[derive(Clone)]
pub struct LocalArenaService {
    arena: Arena,
    puts: Arc<LocalPuts>,
    reporter: Arc<dyn ObjectReporter>,
}

impl LocalArenaService {
    /// A service over the arena and its open local puts; `reporter` acknowledges puts to the head.
    pub fn new(arena: Arena, puts: Arc<LocalPuts>, reporter: Arc<dyn ObjectReporter>) -> Self {
        Self {
            arena,
            puts,
            reporter,
        }
    }
}

fn path_string(path: &std::path::Path) -> Result<String, Status> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Status::failed_precondition(format!(
            "arena path {} is not UTF-8; use the streaming calls",
            path.display()
        ))
    })
}

#[tonic::async_trait]
impl pb::local_arena_server::LocalArena for LocalArenaService {
    async fn open_object(
        &self,
        request: Request<pb::OpenObjectRequest>,
    ) -> Result<Response<pb::OpenObjectReply>, Status> {
        let id = convert::object_id(&request.get_ref().object_id)?;
        // A spilled object is restored first (a file copy): on the blocking pool.
        let file = if self.arena.is_spilled(&id) {
            let arena = self.arena.clone();
            tokio::task::spawn_blocking(move || arena.file_of(&id))
                .await
                .map_err(|e| Status::internal(format!("opening object {id}: {e}")))??
        } else {
            self.arena.file_of(&id)?
        };
        tracing::debug!(object_id = %id, size = file.meta.size, "object opened locally");
        Ok(Response::new(pb::OpenObjectReply {
            path: path_string(&file.path)?,
            device: file.device,
            inode: file.inode,
            size: file.meta.size,
            crc32: file.meta.crc32,
        }))
    }

    async fn create_local_put(
        &self,
        request: Request<pb::CreateLocalPutRequest>,
    ) -> Result<Response<pb::CreateLocalPutReply>, Status> {
        let size = request.get_ref().size;
        let put = self.puts.create(size)?;
        let path = match path_string(&put.path) {
            Ok(p) => p,
            Err(s) => {
                self.puts.abort(put.ticket);
                return Err(s);
            }
        };
        Ok(Response::new(pb::CreateLocalPutReply {
            ticket: put.ticket,
            path,
            device: put.device,
            inode: put.inode,
            lease_ms: put.lease.as_millis() as u64,
        }))
    }

    async fn seal_local_put(
        &self,
        request: Request<pb::SealLocalPutRequest>,
    ) -> Result<Response<pb::PutObjectReply>, Status> {
        let pb::SealLocalPutRequest { ticket, crc32 } = request.into_inner();
        let puts = Arc::clone(&self.puts);
        let (id, meta) = tokio::task::spawn_blocking(move || puts.seal(ticket, crc32))
            .await
            .map_err(|e| Status::internal(format!("sealing local put {ticket}: {e}")))??;
        let span =
            tracing::info_span!("put_object", object_id = %id, size = meta.size, local = true);
        let reply = report_put(&self.arena, self.reporter.as_ref(), id, meta)
            .instrument(span)
            .await?;
        Ok(Response::new(reply))
    }

    async fn abort_local_put(
        &self,
        request: Request<pb::AbortLocalPutRequest>,
    ) -> Result<Response<pb::AbortLocalPutReply>, Status> {
        let ticket = request.get_ref().ticket;
        if !self.puts.abort(ticket) {
            return Err(WorkerError::NoLocalPut(ticket).into());
        }
        Ok(Response::new(pb::AbortLocalPutReply {}))
    }
}
