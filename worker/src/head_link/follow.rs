//! Following the Raft leader: a head that does not lead answers UNAVAILABLE with the leader's
//! address as the toolkit's leader hint (`xnai_proto::net::leader`). The link moves its session (same worker id: the
//! registration is replicated, so the new leader knows this worker) to that head, else to the
//! next one, and retries with backoff until [`FOLLOW_DEADLINE`], riding through elections.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use xnai_proto::ids::WorkerId;
use xnai_proto::net::{self, Backoff};

use super::{CALL_TIMEOUT, HeadLink, RegistryClient, Session, head_error};
use crate::error::{Result, WorkerError};

/// How long a report keeps looking for the leader.
pub const FOLLOW_DEADLINE: Duration = Duration::from_secs(15);
/// Pause after an attempt that named no leader: 50 ms doubling to 1 s.
const FOLLOW_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));

impl HeadLink {
    /// The head index a "not the leader" answer names, if it is one of ours.
    pub(crate) fn leader_hint(&self, s: &tonic::Status) -> Option<usize> {
        let leader = net::leader_hint(s)?;
        self.heads.iter().position(|h| h == leader)
    }

    /// Move `session` (keeping its worker id) to head `index`, unless the session changed
    /// meanwhile (a re-registration or another move won).
    pub(crate) fn move_session(&self, session: &Session, index: usize) {
        let index = index % self.heads.len();
        if index == session.head_index % self.heads.len() {
            return;
        }
        let client = match self.client(index) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot switch head");
                return;
            }
        };
        let moved = self.session.send_if_modified(|cur| match cur {
            Some(c) if c.worker_id == session.worker_id && c.head_index == session.head_index => {
                c.client = client;
                c.head_index = index;
                true
            }
            _ => false,
        });
        if moved {
            tracing::info!(head = %self.heads[index], "following the head leader");
        }
    }

    /// Run `f` against the leader with the current session until it answers, a non-retriable
    /// error comes back, or [`FOLLOW_DEADLINE`] passes.
    pub(crate) async fn call_leader<T, F, Fut>(&self, context: &str, mut f: F) -> Result<T>
    where
        F: FnMut(RegistryClient, WorkerId) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + FOLLOW_DEADLINE;
        let mut backoff = FOLLOW_BACKOFF;
        loop {
            let session = self.session().await?;
            let result =
                tokio::time::timeout(CALL_TIMEOUT, f(session.client.clone(), session.worker_id))
                    .await;
            let (last, hinted) = match result {
                Ok(Ok(reply)) => return Ok(reply.into_inner()),
                Ok(Err(s)) if !net::retriable(s.code()) => {
                    return Err(head_error(context, s));
                }
                Ok(Err(s)) => {
                    let hint = self.leader_hint(&s);
                    self.move_session(&session, hint.unwrap_or(session.head_index + 1));
                    (head_error(context, s), hint.is_some())
                }
                Err(_) => {
                    self.move_session(&session, session.head_index + 1);
                    let e = WorkerError::Head {
                        context: context.to_string(),
                        message: "timed out".into(),
                    };
                    (e, false)
                }
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            if !hinted {
                backoff.wait().await;
            }
        }
    }
}
