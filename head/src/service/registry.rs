//! `xnai.v1.WorkerRegistry`: registration (logged), heartbeats (soft state only, never
//! logged) and object copy reports (logged, acknowledged only once applied).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xnai_proto::ids::{ObjectId, WorkerId};
use xnai_proto::pb;

use super::{HeadContext, convert};
use crate::error::HeadError;
use crate::soft::Pressure;
use crate::state::{Command, Outcome, Resources};

/// The `WorkerRegistry` service handlers.
pub struct RegistryApi {
    ctx: Arc<HeadContext>,
}

impl RegistryApi {
    /// Handlers over the shared context.
    pub fn new(ctx: Arc<HeadContext>) -> Self {
        Self { ctx }
    }
}

fn names(what: &'static str, list: Vec<String>) -> Result<Vec<String>, HeadError> {
    list.into_iter().map(|n| convert::name(what, n)).collect()
}

#[tonic::async_trait]
impl pb::worker_registry_server::WorkerRegistry for RegistryApi {
    async fn register_worker(
        &self,
        req: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerReply>, Status> {
        let r = req.into_inner();
        let request_id = convert::request_id(r.request_id)?;
        let address = convert::name("worker address", r.address)?;
        let command = Command::RegisterWorker {
            request_id: request_id.clone(),
            worker_id: WorkerId::random(),
            address: address.clone(),
            pid: r.pid,
            resources: convert::resources_from_pb(r.resources, Resources::default())?,
            arena_capacity: r.arena_capacity,
            functions: names("function", r.functions)?,
            classes: names("class", r.actor_classes)?,
        };
        let Outcome::WorkerRegistered { worker_id } = self.ctx.propose_one(command).await? else {
            return Err(HeadError::RequestIdReused(request_id).into());
        };
        self.ctx.beats.record(worker_id, 0, 0, Pressure::Ok);
        tracing::info!(%worker_id, %address, pid = r.pid, "worker registered");
        Ok(Response::new(pb::RegisterWorkerReply {
            worker_id: worker_id.hex(),
            heartbeat_interval_ms: self.ctx.beats.timings().heartbeat_interval().as_millis() as u64,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let r = req.into_inner();
        let worker_id = WorkerId::parse(&r.worker_id).map_err(HeadError::from)?;
        let known = self.ctx.log.state().read(|s| s.worker_alive(&worker_id));
        if known {
            self.ctx.beats.record(
                worker_id,
                r.running_tasks,
                r.arena_used,
                Pressure::parse(&r.pressure),
            );
            let spill = convert::spill_from_pb(r.spill.as_ref());
            self.ctx.beats.record_spill(worker_id, spill);
        } else {
            tracing::info!(%worker_id, "heartbeat from an unknown worker; asking it to register again");
        }
        Ok(Response::new(pb::HeartbeatReply { reregister: !known }))
    }

    async fn report_object(
        &self,
        req: Request<pb::ReportObjectRequest>,
    ) -> Result<Response<pb::ReportObjectReply>, Status> {
        let r = req.into_inner();
        let worker_id = WorkerId::parse(&r.worker_id).map_err(HeadError::from)?;
        let object_id = ObjectId::parse(&r.object_id).map_err(HeadError::from)?;
        let kind = convert::copy_kind_from_pb(r.kind)?;
        let command = Command::AddObjectCopy {
            object_id,
            worker_id,
            size: r.size,
            crc32: r.crc32,
            kind,
        };
        let outcome = self.ctx.propose_one(command).await?;
        tracing::debug!(%object_id, %worker_id, ?kind, ?outcome, "object copy reported");
        Ok(Response::new(pb::ReportObjectReply {}))
    }

    async fn report_objects_removed(
        &self,
        req: Request<pb::ReportObjectsRemovedRequest>,
    ) -> Result<Response<pb::ReportObjectsRemovedReply>, Status> {
        let r = req.into_inner();
        let worker_id = WorkerId::parse(&r.worker_id).map_err(HeadError::from)?;
        let object_ids = r
            .object_ids
            .iter()
            .map(|s| ObjectId::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HeadError::from)?;
        tracing::debug!(%worker_id, count = object_ids.len(), reason = %r.reason, "object copies removed");
        self.ctx
            .propose_one(Command::RemoveObjectCopies {
                worker_id,
                object_ids,
                reason: r.reason,
            })
            .await?;
        Ok(Response::new(pb::ReportObjectsRemovedReply {}))
    }
}
