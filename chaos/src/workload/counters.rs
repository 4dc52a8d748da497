//! Counter actors: each process owns one `counter` (unlimited restarts, no transparent call
//! retries, so each call applies at most once; a restart loses its state). The process calls
//! `incr` (adds 1, returns the new value) or `get`; when a value is not the one it expected it
//! reads the actor's restart count, which the counter checker uses to tell a legitimate reset
//! from a lost or doubled increment.

use xnai_sdk::{ActorHandle, ActorOptions, Error};

use super::Ctx;
use crate::history::{OpValue, Outcome};
use crate::rng::Rng;

/// A process's counter and what it last saw.
pub struct Counter {
    handle: ActorHandle,
    name: String,
    /// Last value acknowledged (incr or get).
    last: i64,
}

impl Counter {
    /// Create `chaos-counter-P` (None when the cluster refused for now; retried later).
    pub async fn create(ctx: &Ctx, p: usize) -> Option<Self> {
        let name = format!("chaos-counter-{p}");
        let options = ActorOptions {
            name: Some(name.clone()),
            max_restarts: -1,
            max_task_retries: 0,
            ..Default::default()
        };
        let mut last = 0;
        let handle = match ctx.client.create_actor("counter", vec![], options).await {
            Ok(h) => h,
            // Created by an earlier attempt whose answer was lost: use it from its value.
            Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => {
                let h = ctx.client.get_actor(&name).await.ok()?;
                let t0 = ctx.rec.now_ms();
                let v = h.call("get", vec![]).await.ok()?;
                last = String::from_utf8_lossy(&v).trim().parse().ok()?;
                // In the history too: the checker expects it to be 0 in a fresh cluster.
                ctx.record(
                    p,
                    name.clone(),
                    t0,
                    Outcome::Ok,
                    OpValue::Counter {
                        method: "get".into(),
                        value: Some(last),
                        restarts: None,
                    },
                    None,
                );
                h
            }
            Err(e) => {
                tracing::info!(process = p, error = %e, "counter not created yet");
                return None;
            }
        };
        Some(Self { handle, name, last })
    }

    /// One call: `incr` three times in four, else `get`.
    pub async fn step(&mut self, ctx: &Ctx, p: usize, rng: &mut Rng) {
        let method = if rng.below(4) == 0 { "get" } else { "incr" };
        let t0 = ctx.rec.now_ms();
        let result = tokio::time::timeout(super::OP_BUDGET, self.handle.call(method, vec![])).await;
        let (outcome, value, error) = match result {
            Ok(Ok(b)) => match String::from_utf8_lossy(&b).trim().parse::<i64>() {
                Ok(v) => (Outcome::Ok, Some(v), None),
                Err(_) => (Outcome::Unknown, None, Some("unparsable reply".into())),
            },
            Ok(Err(e @ Error::ActorMethod(_))) => (Outcome::Fail, None, Some(e.to_string())),
            Ok(Err(e)) => (Outcome::Unknown, None, Some(e.to_string())),
            Err(_) => (Outcome::Unknown, None, Some("timed out".into())),
        };
        let expected = if method == "incr" {
            self.last + 1
        } else {
            self.last
        };
        let mut restarts = None;
        if let Some(v) = value {
            if v != expected {
                restarts = ctx
                    .client
                    .actor_info(&self.name)
                    .await
                    .ok()
                    .map(|i| i.restarts);
            }
            self.last = v;
        }
        ctx.record(
            p,
            self.name.clone(),
            t0,
            outcome,
            OpValue::Counter {
                method: method.into(),
                value,
                restarts,
            },
            error,
        );
    }
}
