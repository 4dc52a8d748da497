//! The workload: `clients` concurrent processes, each drawing its next operation from its own
//! seeded stream: `fill` then `digest` task chains (then reading the digest), puts (then reading
//! them back), calls on its own counter actor, and operations on the shared named-actor
//! register. Every operation lands in the history with its outcome.

pub mod counters;
pub mod objects;
pub mod registry;
pub mod tasks;
pub mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xnai_sdk::Client;

use crate::history::{Op, OpValue, Outcome, Recorder};
use crate::raw::RawHead;
use crate::rng::Rng;

/// Names of the shared register (named actors); few, so clients contend on them.
pub const REGISTER_NAMES: [&str; 2] = ["chaos-reg-a", "chaos-reg-b"];

/// One in this many task chains and puts is kept for the final check; the rest are freed.
pub const KEEP_ONE_IN: u64 = 4;

/// How long one workload operation may take before it is recorded as unknown.
pub const OP_BUDGET: Duration = Duration::from_secs(20);

/// What every workload process shares.
pub struct Ctx {
    /// The history.
    pub rec: Recorder,
    /// Head calls with our own request ids.
    pub raw: RawHead,
    /// The SDK (puts, gets, actor calls), with no session: objects live until freed.
    pub client: Client,
    /// The run's seed.
    pub seed: u64,
    /// Set when the workload must stop.
    pub stop: AtomicBool,
}

impl Ctx {
    /// Whether the run is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Record an operation that started at `invoke_ms` and ends now.
    pub fn record(
        &self,
        process: usize,
        key: impl Into<String>,
        invoke_ms: u64,
        outcome: Outcome,
        value: OpValue,
        error: Option<String>,
    ) {
        self.rec.op(Op {
            index: 0,
            process,
            key: key.into(),
            invoke_ms,
            complete_ms: self.rec.now_ms(),
            outcome,
            value,
            error,
        });
    }

    /// Free `objects` (hex ids) and record it, unless `keep`: the kept ones stay for the
    /// final check. Keeps the arenas from filling up with the workload's own outputs.
    pub async fn free_unless(&self, p: usize, keep: bool, objects: Vec<String>) {
        if keep || objects.is_empty() {
            return;
        }
        let refs: Vec<xnai_sdk::ObjectRef> = objects
            .iter()
            .filter_map(|o| xnai_proto::ids::ObjectId::parse(o).ok())
            .map(xnai_sdk::ObjectRef::new)
            .collect();
        let t0 = self.rec.now_ms();
        let r = tokio::time::timeout(OP_BUDGET, self.client.free(&refs)).await;
        let (outcome, error) = match r {
            Ok(Ok(())) => (Outcome::Ok, None),
            Ok(Err(e)) => (Outcome::Unknown, Some(e.to_string())),
            Err(_) => (Outcome::Unknown, Some("timed out".into())),
        };
        let key = objects.first().cloned().unwrap_or_default();
        self.record(p, key, t0, outcome, OpValue::Free { objects }, error);
    }

    /// A request id unique to (seed, process, sequence number): replayable, never reused.
    pub fn request_id(&self, process: usize, seq: u64) -> String {
        format!("{:016x}{:04x}{:012x}", self.seed, process as u16, seq)
    }
}

/// One workload process: runs operations until the context says stop.
pub async fn process(ctx: Arc<Ctx>, p: usize) {
    let mut rng = Rng::derive(ctx.seed, &format!("client-{p}"));
    let mut counter = counters::Counter::create(&ctx, p).await;
    let mut seq = 0u64;
    while !ctx.stopped() {
        seq += 1;
        let dice = rng.below(100);
        if dice < 35 {
            tasks::chain(&ctx, p, &mut rng, &mut seq).await;
        } else if dice < 50 {
            objects::put_then_read(&ctx, p, &mut rng).await;
        } else if dice < 75 {
            match counter.as_mut() {
                Some(c) => c.step(&ctx, p, &mut rng).await,
                None => counter = counters::Counter::create(&ctx, p).await,
            }
        } else {
            registry::step(&ctx, p, &mut rng, seq).await;
        }
        // Pace the clients a little: the point is coverage over time, not load.
        tokio::time::sleep(Duration::from_millis(rng.range(5, 40))).await;
    }
}
