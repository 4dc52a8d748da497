//! Client sessions on the `Head` service: `OpenSession`, `KeepAlive` and `ReleaseObjects`.
//! Opening and releasing are logged commands; keep-alives renew the lease in the leader's soft
//! state only (the runtime logs `CloseSession` when a lease runs out).

use xnai_proto::ids::{ObjectId, SessionId};
use xnai_proto::pb;

use super::{HeadContext, convert};
use crate::error::{HeadError, Result};
use crate::state::{ApplyError, Command, Outcome};

/// Lease given when the client asks for none.
pub const DEFAULT_SESSION_LEASE_MS: u64 = 10_000;
/// Shortest lease accepted (keep-alives cost a round trip each).
pub const MIN_SESSION_LEASE_MS: u64 = 500;

/// A session id from the wire; empty is `None`.
pub fn session_id(s: &str) -> Result<Option<SessionId>> {
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(SessionId::parse(s).map_err(HeadError::from)?))
}

/// `OpenSession`.
pub async fn open(ctx: &HeadContext, r: pb::OpenSessionRequest) -> Result<pb::OpenSessionReply> {
    let request_id = convert::request_id(r.request_id)?;
    let lease_ms = match r.lease_ms {
        0 => DEFAULT_SESSION_LEASE_MS,
        ms => ms.max(MIN_SESSION_LEASE_MS),
    };
    let command = Command::OpenSession {
        request_id: request_id.clone(),
        session_id: SessionId::random(),
        lease_ms,
    };
    match ctx.propose_one(command).await? {
        Outcome::SessionOpened { session_id } => {
            ctx.beats.renew_session(session_id);
            tracing::info!(%session_id, lease_ms, "session opened");
            Ok(pb::OpenSessionReply {
                session_id: session_id.hex(),
                lease_ms,
            })
        }
        _ => Err(HeadError::RequestIdReused(request_id)),
    }
}

/// `KeepAlive` (or close).
pub async fn keep_alive(ctx: &HeadContext, r: pb::KeepAliveRequest) -> Result<pb::KeepAliveReply> {
    let id = session_id(&r.session_id)?
        .ok_or_else(|| HeadError::InvalidArgument("session_id is empty".into()))?;
    let open = ctx.log.state().read(|s| s.sessions.contains_key(&id));
    if !open {
        return Err(HeadError::Refused(ApplyError::NoSuchSession(id)));
    }
    if r.close {
        ctx.beats.forget_session(&id);
        ctx.propose_one(Command::CloseSession {
            session_id: id,
            reason: "closed by its client".into(),
        })
        .await?;
        tracing::info!(session_id = %id, "session closed");
    } else {
        ctx.beats.renew_session(id);
    }
    Ok(pb::KeepAliveReply {})
}

/// `ReleaseObjects`.
pub async fn release(
    ctx: &HeadContext,
    r: pb::ReleaseObjectsRequest,
) -> Result<pb::ReleaseObjectsReply> {
    let session = session_id(&r.session_id)?;
    let object_ids = r
        .object_ids
        .iter()
        .map(|s| ObjectId::parse(s))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(HeadError::from)?;
    if object_ids.is_empty() {
        return Ok(pb::ReleaseObjectsReply {});
    }
    if let Some(s) = session {
        ctx.beats.renew_session(s);
    }
    tracing::debug!(count = object_ids.len(), ?session, "releasing objects");
    ctx.propose_one(Command::ReleaseObjects {
        session_id: session,
        object_ids,
    })
    .await?;
    Ok(pb::ReleaseObjectsReply {})
}
