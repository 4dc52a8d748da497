//! The client session: objects of tasks this client submits belong to a session that the
//! head keeps while the client renews its lease. A background task renews the lease and flushes
//! released objects in batches (every [`FLUSH_EVERY`]); when the client is gone the task stops,
//! the lease runs out, and the head frees what the session held (unless live work or lineage
//! needs it). The CLI opens no session: what it creates lives until `xnai object free`.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use xnai_proto::ids::{ObjectId, SessionId};
use xnai_proto::pb;
use xnai_proto::timings::renew_every;

use super::error::{Error, Result};
use super::link::head_call;
use super::{Client, Inner, ObjectRef, request_id};

/// How often released objects are sent to the head.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Most object ids in one `ReleaseObjects` call.
pub const RELEASE_BATCH: usize = 10_000;

/// The session this client opened and the objects waiting to be released. Thread-safe.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    id: Mutex<Option<SessionId>>,
    released: Mutex<Vec<ObjectId>>,
}

impl SessionState {
    /// The session id, if one is open.
    pub(crate) fn id(&self) -> Option<SessionId> {
        *self.id.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, id: Option<SessionId>) {
        *self.id.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }

    fn take_released(&self) -> Vec<ObjectId> {
        std::mem::take(&mut *self.released.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Client {
    /// Open a session with `lease` and start renewing it in the background.
    pub(crate) async fn open_session(&self, lease: Duration) -> Result<()> {
        let req = pb::OpenSessionRequest {
            request_id: request_id(),
            lease_ms: lease.as_millis() as u64,
        };
        let reply = head_call!(self.inner.head, open_session, req).await?;
        let id = SessionId::parse(&reply.session_id)
            .map_err(|e| Error::Protocol(format!("bad session id from the head: {e}")))?;
        self.inner.session.set(Some(id));
        let every = renew_every(Duration::from_millis(reply.lease_ms.max(300)));
        tokio::spawn(renew_loop(Arc::downgrade(&self.inner), every));
        tracing::debug!(session_id = %id, lease_ms = reply.lease_ms, "session opened");
        Ok(())
    }

    /// The session id sent with submissions (empty without a session).
    pub(crate) fn session_hex(&self) -> String {
        self.inner.session.id().map(|s| s.hex()).unwrap_or_default()
    }

    /// Let go of objects: sent to the head in the next batch (within about 100 ms). Each is freed
    /// once no live work or lineage needs it. Without a session (the CLI), use
    /// [`Client::free`].
    pub fn release(&self, objects: &[ObjectRef]) {
        let mut q = self
            .inner
            .session
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        q.extend(objects.iter().map(|o| o.id()));
    }

    /// Free objects now, whoever holds them (`xnai object free`).
    pub async fn free(&self, objects: &[ObjectRef]) -> Result<()> {
        let req = pb::ReleaseObjectsRequest {
            session_id: String::new(),
            object_ids: objects.iter().map(|o| o.id().hex()).collect(),
        };
        head_call!(self.inner.head, release_objects, req).await?;
        Ok(())
    }

    /// Flush released objects and close the session: everything it holds is released.
    pub async fn close(&self) -> Result<()> {
        flush(&self.inner).await?;
        let Some(id) = self.inner.session.id() else {
            return Ok(());
        };
        self.inner.session.set(None);
        let req = pb::KeepAliveRequest {
            session_id: id.hex(),
            close: true,
        };
        head_call!(self.inner.head, keep_alive, req).await?;
        Ok(())
    }
}

async fn flush(inner: &Inner) -> Result<()> {
    let released = inner.session.take_released();
    let Some(id) = inner.session.id() else {
        return Ok(());
    };
    for batch in released.chunks(RELEASE_BATCH) {
        let req = pb::ReleaseObjectsRequest {
            session_id: id.hex(),
            object_ids: batch.iter().map(|o| o.hex()).collect(),
        };
        head_call!(inner.head, release_objects, req).await?;
    }
    Ok(())
}

/// Renew the lease every `every` and flush releases every [`FLUSH_EVERY`], until the client is
/// dropped or its session is closed.
async fn renew_loop(inner: Weak<Inner>, every: Duration) {
    let mut since_renew = Duration::ZERO;
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        since_renew += FLUSH_EVERY;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let Some(id) = inner.session.id() else {
            return;
        };
        if let Err(e) = flush(&inner).await {
            tracing::warn!(error = %e, "cannot release objects; will retry");
        }
        if since_renew < every {
            continue;
        }
        since_renew = Duration::ZERO;
        let req = pb::KeepAliveRequest {
            session_id: id.hex(),
            close: false,
        };
        if let Err(e) = head_call!(inner.head, keep_alive, req).await {
            tracing::warn!(session_id = %id, error = %e, "cannot renew the session lease");
        }
    }
}
