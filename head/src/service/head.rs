//! `xnai.v1.Head`: the client-facing service. Writes (submit, create, kill) are proposed to the
//! log and answered after they are applied; reads and waits look at the applied state.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use xnai_proto::ids::{ActorId, ObjectId, TaskId};
use xnai_proto::pb;

use super::HeadContext;
use super::convert;
use crate::error::{HeadError, Result};
use crate::state::{
    ActorSpec, ActorState, Command, ControlState, ObjectState, Outcome, TaskSpec, WorkerState,
};

/// The `Head` service handlers.
pub struct HeadApi {
    ctx: Arc<HeadContext>,
}

impl HeadApi {
    /// Handlers over the shared context.
    pub fn new(ctx: Arc<HeadContext>) -> Self {
        Self { ctx }
    }
}

/// Refuses an actor asking for more memory than any live worker offering its class has in
/// total (it could never be placed), naming the best worker's free memory. With no such worker
/// yet it is accepted and waits.
fn memory_fits_somewhere(s: &ControlState, class: &str, need: u64) -> Result<()> {
    let best = s
        .workers
        .iter()
        .filter(|(_, w)| w.state == WorkerState::Alive && w.classes.contains(class))
        .max_by_key(|(_, w)| (w.total.memory_bytes, w.available.memory_bytes));
    match best {
        Some((id, w)) if w.total.memory_bytes < need => Err(HeadError::ActorTooBig {
            class: class.to_string(),
            need,
            free: w.available.memory_bytes,
            total: w.total.memory_bytes,
            worker: id.to_string(),
            address: w.address.clone(),
        }),
        _ => Ok(()),
    }
}

/// Find an actor by hex id, else by live name, else by the newest actor that had the name.
fn resolve_actor(s: &ControlState, name_or_id: &str) -> Result<ActorId> {
    if name_or_id.is_empty() {
        return Err(HeadError::InvalidArgument(
            "name_or_id is empty: give an actor name or id".into(),
        ));
    }
    if let Ok(id) = ActorId::parse(name_or_id)
        && s.actors.contains_key(&id)
    {
        return Ok(id);
    }
    if let Some(id) = s.actor_by_name(name_or_id) {
        return Ok(id);
    }
    s.actors
        .iter()
        .filter(|(_, a)| a.spec.options.name.as_deref() == Some(name_or_id))
        .max_by_key(|(_, a)| a.seq)
        .map(|(id, _)| *id)
        .ok_or_else(|| HeadError::NoSuchActor(name_or_id.to_string()))
}

fn reused(request_id: &str) -> Status {
    HeadError::RequestIdReused(request_id.to_string()).into()
}

#[tonic::async_trait]
impl pb::head_server::Head for HeadApi {
    async fn submit_task(
        &self,
        req: Request<pb::SubmitTaskRequest>,
    ) -> Result<Response<pb::SubmitTaskReply>, Status> {
        let r = req.into_inner();
        let request_id = convert::request_id(r.request_id)?;
        let function = convert::name("function", r.function)?;
        let args = convert::args_from_pb(r.args)?;
        let mut options = convert::task_options_from_pb(r.options)?;
        options.session = super::sessions::session_id(&r.session_id)?;
        let (unfinished, seen) = self
            .ctx
            .log
            .state()
            .read(|s| (s.unfinished_tasks, s.remembered(&request_id).is_some()));
        if unfinished >= self.ctx.max_pending_tasks && !seen {
            return Err(HeadError::TooManyPendingTasks(unfinished).into());
        }
        let task_id = TaskId::random();
        let spec = TaskSpec {
            function,
            args,
            options,
        };
        let command = Command::SubmitTask {
            request_id: request_id.clone(),
            task_id,
            spec,
        };
        #[cfg(feature = "chaos-bug")]
        if super::chaos_bug::ack_before_commit() {
            return Ok(super::chaos_bug::ack_now(
                self.ctx.clone(),
                command,
                task_id,
            ));
        }
        match self.ctx.propose_one(command).await? {
            Outcome::TaskSubmitted { task_id, object_id } => {
                tracing::debug!(%task_id, %object_id, "task submitted");
                Ok(Response::new(pb::SubmitTaskReply {
                    task_id: task_id.hex(),
                    object_id: object_id.hex(),
                }))
            }
            _ => Err(reused(&request_id)),
        }
    }

    async fn locate_object(
        &self,
        req: Request<pb::LocateObjectRequest>,
    ) -> Result<Response<pb::ObjectInfo>, Status> {
        let r = req.into_inner();
        let id = ObjectId::parse(&r.object_id).map_err(HeadError::from)?;
        self.ctx.linearize().await?;
        let info = self
            .ctx
            .wait_for(r.timeout_ms, |s| {
                let o = s.object_view(&id).ok_or(HeadError::NoSuchObject(id))?;
                Ok((
                    convert::object_info_to_pb(s, id, &o),
                    o.state != ObjectState::Pending,
                ))
            })
            .await?;
        Ok(Response::new(info))
    }

    async fn wait_objects(
        &self,
        req: Request<pb::WaitObjectsRequest>,
    ) -> Result<Response<pb::WaitObjectsReply>, Status> {
        let r = req.into_inner();
        let ids = r
            .object_ids
            .iter()
            .map(|s| ObjectId::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HeadError::from)?;
        let need = match r.num_ready as usize {
            0 => ids.len(),
            n => n.min(ids.len()),
        };
        let reply = self
            .ctx
            .wait_for(r.timeout_ms, |s| {
                let mut reply = pb::WaitObjectsReply::default();
                for id in &ids {
                    let o = s.object_view(id).ok_or(HeadError::NoSuchObject(*id))?;
                    let list = if o.state == ObjectState::Pending {
                        &mut reply.pending
                    } else {
                        &mut reply.done
                    };
                    list.push(id.hex());
                }
                let done = reply.done.len() >= need;
                Ok((reply, done))
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn pick_put_target(
        &self,
        req: Request<pb::PickPutTargetRequest>,
    ) -> Result<Response<pb::ObjectLocation>, Status> {
        let size = req.into_inner().size;
        let view = self.ctx.beats.view();
        let picked = self.ctx.log.state().read(|s| {
            // (free, capacity, id, address) of live workers.
            let live: Vec<_> = s
                .workers
                .iter()
                .filter(|(id, _)| view.placeable(id) && s.placeable(id))
                .map(|(id, w)| {
                    let used = view.workers.get(id).map(|v| v.arena_used).unwrap_or(0);
                    (
                        w.arena_capacity.saturating_sub(used),
                        w.arena_capacity,
                        *id,
                        w.address.clone(),
                    )
                })
                .collect();
            let Some(largest) = live.iter().max_by_key(|l| (l.1, l.0)) else {
                return Err(HeadError::NoLiveWorker);
            };
            if largest.1 < size {
                return Err(HeadError::ObjectTooBig {
                    size,
                    largest: largest.1,
                    free: largest.0,
                });
            }
            live.iter()
                .filter(|l| l.1 >= size)
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.2.cmp(&a.2)))
                .map(|l| pb::ObjectLocation {
                    worker_id: l.2.hex(),
                    address: l.3.clone(),
                })
                .ok_or(HeadError::NoLiveWorker)
        })?;
        Ok(Response::new(picked))
    }

    async fn create_actor(
        &self,
        req: Request<pb::CreateActorRequest>,
    ) -> Result<Response<pb::CreateActorReply>, Status> {
        let r = req.into_inner();
        let request_id = convert::request_id(r.request_id)?;
        let class = convert::name("class", r.class)?;
        let args = convert::args_from_pb(r.args)?;
        let options = convert::actor_options_from_pb(r.options)?;
        let need = options.resources.memory_bytes;
        if need > 0 {
            self.ctx
                .log
                .state()
                .read(|s| memory_fits_somewhere(s, &class, need))?;
        }
        let actor_id = ActorId::random();
        let spec = ActorSpec {
            class,
            args,
            options,
        };
        match self
            .ctx
            .propose_one(Command::CreateActor {
                request_id: request_id.clone(),
                actor_id,
                spec,
            })
            .await?
        {
            Outcome::ActorCreated { actor_id } => {
                tracing::info!(%actor_id, "actor created");
                Ok(Response::new(pb::CreateActorReply {
                    actor_id: actor_id.hex(),
                }))
            }
            _ => Err(reused(&request_id)),
        }
    }

    async fn get_actor(
        &self,
        req: Request<pb::GetActorRequest>,
    ) -> Result<Response<pb::ActorInfo>, Status> {
        let r = req.into_inner();
        self.ctx.linearize().await?;
        let id = self
            .ctx
            .log
            .state()
            .read(|s| resolve_actor(s, &r.name_or_id))?;
        let info = self
            .ctx
            .wait_for(r.timeout_ms, |s| {
                let a = s
                    .actors
                    .get(&id)
                    .ok_or_else(|| HeadError::NoSuchActor(r.name_or_id.clone()))?;
                let settled = matches!(a.state, ActorState::Alive | ActorState::Dead);
                Ok((convert::actor_info_to_pb(s, id, a), settled))
            })
            .await?;
        Ok(Response::new(info))
    }

    async fn list_actors(
        &self,
        _req: Request<pb::ListActorsRequest>,
    ) -> Result<Response<pb::ListActorsReply>, Status> {
        self.ctx.linearize().await?;
        let actors = self.ctx.log.state().read(|s| {
            let mut all: Vec<_> = s.actors.iter().collect();
            all.sort_by_key(|(_, a)| a.seq);
            all.into_iter()
                .map(|(id, a)| convert::actor_info_to_pb(s, *id, a))
                .collect()
        });
        Ok(Response::new(pb::ListActorsReply { actors }))
    }

    async fn kill_actor(
        &self,
        req: Request<pb::KillActorRequest>,
    ) -> Result<Response<pb::KillActorReply>, Status> {
        let r = req.into_inner();
        let request_id = convert::request_id(r.request_id)?;
        let actor_id = self
            .ctx
            .log
            .state()
            .read(|s| resolve_actor(s, &r.name_or_id))?;
        match self
            .ctx
            .propose_one(Command::KillActor {
                request_id: request_id.clone(),
                actor_id,
            })
            .await?
        {
            Outcome::ActorKilled { actor_id } => {
                tracing::info!(%actor_id, "actor killed");
                Ok(Response::new(pb::KillActorReply {
                    actor_id: actor_id.hex(),
                }))
            }
            _ => Err(reused(&request_id)),
        }
    }

    async fn cluster_status(
        &self,
        _req: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusReply>, Status> {
        self.ctx.linearize().await?;
        let view = self.ctx.beats.view();
        let commit_index = *self.ctx.log.applied().borrow();
        let me = &self.ctx.identity;
        let head = pb::HeadStatus {
            id: me.id,
            address: me.address.clone(),
            role: "leader".into(),
            term: 1,
            commit_index,
            pid: me.pid,
        };
        let heads = self.ctx.head_rows(head).await;
        let reply = self.ctx.log.state().read(|s| pb::ClusterStatusReply {
            heads,
            workers: s
                .workers
                .iter()
                .map(|(id, w)| convert::worker_status_to_pb(*id, w, view.workers.get(id)))
                .collect(),
            actors: s
                .actors
                .values()
                .filter(|a| a.state != ActorState::Dead)
                .count() as u64,
            tasks: s.tasks.len() as u64,
            objects: s.objects.len() as u64,
            pending_tasks: s
                .tasks
                .values()
                .filter(|t| convert::is_pending(t.state))
                .count() as u64,
            state: Some(convert::state_size_to_pb(&s.size())),
        });
        Ok(Response::new(reply))
    }

    async fn add_head(
        &self,
        req: Request<pb::AddHeadRequest>,
    ) -> Result<Response<pb::AddHeadReply>, Status> {
        let id = self.ctx.add_head(req.into_inner().address).await?;
        Ok(Response::new(pb::AddHeadReply { id }))
    }

    async fn remove_head(
        &self,
        req: Request<pb::RemoveHeadRequest>,
    ) -> Result<Response<pb::RemoveHeadReply>, Status> {
        self.ctx.remove_head(req.into_inner().id).await?;
        Ok(Response::new(pb::RemoveHeadReply {}))
    }

    async fn open_session(
        &self,
        req: Request<pb::OpenSessionRequest>,
    ) -> Result<Response<pb::OpenSessionReply>, Status> {
        Ok(Response::new(
            super::sessions::open(&self.ctx, req.into_inner()).await?,
        ))
    }

    async fn keep_alive(
        &self,
        req: Request<pb::KeepAliveRequest>,
    ) -> Result<Response<pb::KeepAliveReply>, Status> {
        Ok(Response::new(
            super::sessions::keep_alive(&self.ctx, req.into_inner()).await?,
        ))
    }

    async fn release_objects(
        &self,
        req: Request<pb::ReleaseObjectsRequest>,
    ) -> Result<Response<pb::ReleaseObjectsReply>, Status> {
        Ok(Response::new(
            super::sessions::release(&self.ctx, req.into_inner()).await?,
        ))
    }
}
