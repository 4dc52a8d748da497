//! Recovery time after each fault: from injection to the completion of the first successful
//! operation invoked after it (any op; actor calls skip the head), to the first acknowledged
//! task submission (a Raft write: what head faults delay), and from the heal to the first
//! success invoked after the heal, as percentiles per nemesis. Violations: a fault after whose
//! heal nothing ever succeeded again, and a fault during which some kind of operation failed
//! (or was left unknown) and no operation of that same kind succeeded after the heal: the
//! cluster recovered for other operations, not for that one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{Fault, History, Op, OpValue, Outcome};
use crate::workload::verify::VERIFIER;

/// Name in the report.
pub const NAME: &str = "recovery";

/// Recovery of one fault.
#[derive(Clone, Debug, Serialize)]
pub struct Recovery {
    /// The fault.
    pub fault: Fault,
    /// Injection to the first later success (ms), if any.
    pub after_fault_ms: Option<u64>,
    /// Heal to the first later success (ms), if any.
    pub after_heal_ms: Option<u64>,
    /// Injection to the first later acknowledged task submission (a write through the Raft
    /// log: what a head fault delays), if any.
    pub after_fault_write_ms: Option<u64>,
}

/// Recovery samples of one nemesis: (after fault, after heal, first write after fault).
type Samples = (Vec<u64>, Vec<u64>, Vec<u64>);

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn first_success_after(ops: &[&Op], t: u64) -> Option<u64> {
    ops.iter()
        .filter(|o| o.outcome == Outcome::Ok && o.invoke_ms >= t)
        .map(|o| o.complete_ms - t)
        .min()
}

fn first_write_after(ops: &[&Op], t: u64) -> Option<u64> {
    let writes: Vec<&Op> = ops
        .iter()
        .filter(|o| matches!(o.value, OpValue::Submit { .. }))
        .copied()
        .collect();
    first_success_after(&writes, t)
}

/// Each fault's recovery.
pub fn recoveries(h: &History) -> Vec<Recovery> {
    let ops: Vec<&Op> = h.ops.iter().filter(|o| o.process != VERIFIER).collect();
    h.faults
        .iter()
        .map(|f| Recovery {
            fault: f.clone(),
            after_fault_ms: first_success_after(&ops, f.start_ms),
            after_heal_ms: first_success_after(&ops, f.end_ms),
            after_fault_write_ms: first_write_after(&ops, f.start_ms),
        })
        .collect()
}

fn stats(mut v: Vec<u64>) -> serde_json::Value {
    v.sort_unstable();
    json!({
        "n": v.len(),
        "p50": percentile(&v, 50.0),
        "p90": percentile(&v, 90.0),
        "p99": percentile(&v, 99.0),
        "max": v.last(),
    })
}

/// Kinds of operation that failed or ended unknown while `f` was in effect and never
/// succeeded again once it was healed, each with its failed ops (the witness).
pub fn kinds_not_recovered<'h>(h: &'h History, f: &Fault) -> BTreeMap<String, Vec<&'h Op>> {
    let ops = h.ops.iter().filter(|o| o.process != VERIFIER);
    let mut failed: BTreeMap<String, Vec<&Op>> = BTreeMap::new();
    for o in ops.clone() {
        if o.outcome != Outcome::Ok && o.invoke_ms >= f.start_ms && o.invoke_ms <= f.end_ms {
            failed.entry(o.kind()).or_default().push(o);
        }
    }
    failed.retain(|kind, _| {
        !ops.clone()
            .any(|o| o.outcome == Outcome::Ok && o.invoke_ms >= f.end_ms && o.kind() == *kind)
    });
    failed
}

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    let rs = recoveries(h);
    let mut violations = Vec::new();
    for f in &h.faults {
        for (kind, failed) in kinds_not_recovered(h, f) {
            violations.push(Violation {
                checker: NAME,
                message: format!(
                    "{} op(s) of kind {kind} failed during {} on {} ({} to {} ms) and no {kind} \
                     succeeded after the heal",
                    failed.len(),
                    f.nemesis,
                    f.target,
                    f.start_ms,
                    f.end_ms
                ),
                witness: failed.into_iter().take(5).cloned().collect(),
            });
        }
    }
    let mut per: BTreeMap<String, Samples> = BTreeMap::new();
    let (mut all_fault, mut all_heal, mut all_write) = (Vec::new(), Vec::new(), Vec::new());
    for r in &rs {
        let e = per.entry(r.fault.nemesis.clone()).or_default();
        if let Some(v) = r.after_fault_ms {
            e.0.push(v);
            all_fault.push(v);
        }
        if let Some(v) = r.after_fault_write_ms {
            e.2.push(v);
            all_write.push(v);
        }
        match r.after_heal_ms {
            Some(v) => {
                e.1.push(v);
                all_heal.push(v);
            }
            None => violations.push(Violation {
                checker: NAME,
                message: format!(
                    "no operation succeeded after {} on {} was healed at {} ms",
                    r.fault.nemesis, r.fault.target, r.fault.end_ms
                ),
                witness: vec![],
            }),
        }
    }
    let per_nemesis: serde_json::Map<String, serde_json::Value> = per
        .into_iter()
        .map(|(k, (f, hl, w))| {
            let v = json!({
                "after_fault_ms": stats(f),
                "after_fault_write_ms": stats(w),
                "after_heal_ms": stats(hl),
            });
            (k, v)
        })
        .collect();
    CheckResult {
        checker: NAME,
        summary: json!({
            "after_fault_ms": stats(all_fault),
            "after_fault_write_ms": stats(all_write),
            "after_heal_ms": stats(all_heal),
            "per_nemesis": per_nemesis,
        }),
        violations,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};
    use crate::history::OpValue;

    fn any(t0: u64, t1: u64, outcome: Outcome) -> Op {
        op(
            0,
            "c",
            t0,
            t1,
            outcome,
            OpValue::Counter {
                method: "get".into(),
                value: Some(0),
                restarts: None,
            },
        )
    }

    fn fault(start: u64, end: u64) -> Fault {
        Fault {
            nemesis: "leader-kill".into(),
            target: "head-1".into(),
            start_ms: start,
            end_ms: end,
            note: String::new(),
        }
    }

    #[test]
    fn measures_and_flags_no_recovery() {
        let h = History {
            ops: numbered(vec![
                any(90, 95, Outcome::Ok),
                any(100, 2100, Outcome::Unknown),
                any(150, 1300, Outcome::Ok),
                any(5200, 5210, Outcome::Ok),
            ]),
            faults: vec![fault(100, 5000)],
            ..Default::default()
        };
        let r = recoveries(&h);
        assert_eq!(r[0].after_fault_ms, Some(1200));
        assert_eq!(r[0].after_heal_ms, Some(210));
        assert!(check(&h).violations.is_empty());
        let h = History {
            faults: vec![fault(100, 6000)],
            ..h
        };
        let v = check(&h).violations;
        assert!(
            v.iter()
                .any(|v| v.message.starts_with("no operation succeeded")),
            "{v:?}"
        );
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 99.0), Some(4));
    }

    fn put(t0: u64, t1: u64, outcome: Outcome) -> Op {
        op(
            1,
            "p",
            t0,
            t1,
            outcome,
            OpValue::Put {
                size: 8,
                expect: crate::history::Expect::Sha256 { hex: "ab".into() },
                object: None,
            },
        )
    }

    #[test]
    fn recovery_needs_the_same_kind_of_op_to_succeed_again() {
        // A put failed during the fault; after the heal only counter calls succeed.
        let h = History {
            ops: numbered(vec![
                put(200, 3000, Outcome::Unknown),
                any(5200, 5210, Outcome::Ok),
                any(6000, 6010, Outcome::Ok),
            ]),
            faults: vec![fault(100, 5000)],
            ..Default::default()
        };
        let v = check(&h).violations;
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("kind put"), "{}", v[0].message);
        assert_eq!(v[0].witness.len(), 1);
        // A put succeeding after the heal recovers it.
        let mut ops = h.ops.clone();
        ops.push(put(5300, 5400, Outcome::Ok));
        let h = History {
            ops: numbered(ops),
            ..h
        };
        assert!(check(&h).violations.is_empty());
        // A put that succeeded only during the fault (invoked before the heal) does not.
        let h2 = History {
            ops: numbered(vec![
                put(200, 3000, Outcome::Unknown),
                put(3100, 4000, Outcome::Ok),
                any(5200, 5210, Outcome::Ok),
            ]),
            faults: vec![fault(100, 5000)],
            ..Default::default()
        };
        assert_eq!(check(&h2).violations.len(), 1);
    }
}
