//! The final verification phase: once every fault is healed, read back every object the
//! cluster acknowledged (each task's output by the id its submission returned, each put), and
//! record the reads as final checks for the lost-acknowledgement and digest checkers.

use std::sync::Arc;

use futures::StreamExt;

use super::Ctx;
use super::tasks::read;
use crate::history::{Expect, History, OpValue, Outcome};

/// The process number the final reads are recorded under.
pub const VERIFIER: usize = 999;

/// Every acknowledged object the workload did not free, and what it must contain.
pub fn acknowledged(h: &History) -> Vec<(String, Expect)> {
    let freed: std::collections::HashSet<&str> = h
        .ops
        .iter()
        .filter_map(|o| match &o.value {
            OpValue::Free { objects } => Some(objects.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let mut out = Vec::new();
    for op in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        match &op.value {
            OpValue::Submit {
                replies, expect, ..
            } => {
                if let Some(o) = replies.first() {
                    out.push((o.clone(), expect.clone()));
                }
            }
            OpValue::Put {
                object: Some(o),
                expect,
                ..
            } => out.push((o.clone(), expect.clone())),
            _ => {}
        }
    }
    out.retain(|(o, _)| !freed.contains(o.as_str()));
    out
}

/// Read every acknowledged object, four at a time.
pub async fn final_reads(ctx: Arc<Ctx>) {
    let objects = acknowledged(&ctx.rec.snapshot());
    futures::stream::iter(objects)
        .for_each_concurrent(4, |(o, e)| {
            let ctx = ctx.clone();
            async move { read(&ctx, VERIFIER, &o, e, true).await }
        })
        .await;
}
