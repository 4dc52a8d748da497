//! Leader routing for the client-facing services. [`LeaderGate`] is an interceptor in front of
//! `Head` and `WorkerRegistry`: on a head that is not the Raft leader every call ends with
//! UNAVAILABLE "not the leader; leader is HOST:PORT" (or "no leader elected yet") and the
//! leader hint (both made by the one `From<HeadError> for Status`, through
//! `xnai_proto::net::leader`), so the SDK and workers move to the leader by themselves.
//! Also the hooks the handlers use: linearizable reads, the heads' status rows and membership.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};
use xnai_proto::pb;

use super::HeadContext;
use crate::error::HeadError;
use crate::log::{CommandLog, Leadership, LogError};

/// Refuses calls on a head that does not lead.
#[derive(Clone)]
pub struct LeaderGate {
    log: Arc<dyn CommandLog>,
}

impl LeaderGate {
    /// A gate asking `log` who leads.
    pub fn new(log: Arc<dyn CommandLog>) -> Self {
        Self { log }
    }
}

impl Interceptor for LeaderGate {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        match self.log.leadership() {
            Leadership::Leader => Ok(req),
            Leadership::Follower(leader) => {
                Err(HeadError::from(LogError::NotLeader { leader }).into())
            }
        }
    }
}

impl HeadContext {
    /// Wait until this head's state reflects every write committed before the call
    /// (ReadIndex): a read after it sees every acknowledged write.
    pub(crate) async fn linearize(&self) -> Result<(), Status> {
        self.log
            .read_barrier()
            .await
            .map_err(|e| HeadError::from(e).into())
    }

    /// One row per head of the group; `me` alone for a single-node log.
    pub(crate) async fn head_rows(&self, me: pb::HeadStatus) -> Vec<pb::HeadStatus> {
        let heads = self.log.heads().await;
        if heads.is_empty() {
            return vec![me];
        }
        heads
            .into_iter()
            .map(|h| pb::HeadStatus {
                id: h.id,
                address: h.address,
                role: h.role,
                term: h.term,
                commit_index: h.commit_index,
                pid: h.pid,
            })
            .collect()
    }

    /// AddHead: identify the new head, commit the membership change, return its id.
    pub(crate) async fn add_head(&self, address: String) -> Result<u64, Status> {
        if address.trim().is_empty() {
            return Err(Status::invalid_argument(
                "address is empty: give the new head's HOST:PORT",
            ));
        }
        self.log
            .add_head(address.trim().to_string())
            .await
            .map_err(|e| HeadError::from(e).into())
    }

    /// RemoveHead: commit the removal of head `id`.
    pub(crate) async fn remove_head(&self, id: u64) -> Result<(), Status> {
        if id == 0 {
            return Err(Status::invalid_argument("head ids start at 1"));
        }
        self.log
            .remove_head(id)
            .await
            .map_err(|e| HeadError::from(e).into())
    }
}
