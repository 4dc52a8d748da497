//! No acknowledged result lost: every object the cluster acknowledged (a task submission's
//! output, a put) is read back in the final phase, after every fault is healed, and the read
//! must succeed. The one loss the contract allows: a put object (which has no lineage) whose
//! only copy died with its worker. It is excused only when the worker the head names as the
//! holder ("was put on worker W, which lost it") is the node a worker fault (kill, pause, cut,
//! slow link: past the heartbeat lease the head declares it dead and a returning process
//! re-registers empty) hit at or after the put; any other loss of a put is a violation.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{Expect, Fault, History, Op, OpValue, Outcome};
use crate::workload::verify::acknowledged;

/// Name in the report.
pub const NAME: &str = "acked-not-lost";

/// Worker faults that can take a worker's objects with it (arena-fill frees its own ballast).
const LOSING_FAULTS: [&str; 4] = ["worker-kill", "worker-pause", "partition", "slow-link"];

/// The worker id a lost put's error names as its holder.
pub fn holder_named(error: &str) -> Option<&str> {
    let rest = error.split("was put on worker ").nth(1)?;
    let id = rest.split([',', ' ']).next()?;
    (!id.is_empty()).then_some(id)
}

/// The fault that excuses the loss of the put `ack` whose final read failed with `error`: a
/// worker fault aimed at the holder's node, still in effect or yet to come when the put was
/// invoked. `None`: nothing excuses it (the holder is unnamed, unknown, or was not hit).
fn excusing_fault<'h>(h: &'h History, ack: &Op, error: &str) -> Option<&'h str> {
    let holder = holder_named(error)?;
    let node = h.node_of(holder)?;
    let hits: Vec<&Fault> = h
        .faults
        .iter()
        .filter(|f| {
            f.target == node
                && LOSING_FAULTS.contains(&f.nemesis.as_str())
                && f.end_ms >= ack.invoke_ms
        })
        .collect();
    // Counted under the fault that ended the holder: the last one that began before the node
    // registered anew (the holder's successor), else the first one.
    let seen = h.workers.iter().find(|w| w.worker_id == holder)?.at_ms;
    let successor = h
        .workers
        .iter()
        .filter(|w| w.node.as_deref() == Some(node) && w.at_ms > seen)
        .map(|w| w.at_ms)
        .min();
    successor
        .and_then(|t| hits.iter().rev().find(|f| f.start_ms < t))
        .or(hits.first())
        .map(|f| f.nemesis.as_str())
}

/// Run the check. Acknowledged task outputs that failed for good because the task used up its
/// whole retry budget on system errors (e.g. its argument's only holder died and every retry
/// failed to pull it before the head declared that worker dead) were reported to the user
/// instead of lost silently: warnings, violations only under `--strict`.
pub fn check(h: &History) -> CheckResult {
    let mut finals: HashMap<&str, &Op> = HashMap::new();
    for op in &h.ops {
        if let OpValue::Read {
            object,
            final_check: true,
            ..
        } = &op.value
        {
            finals.insert(object.as_str(), op);
        }
    }
    let acked = acknowledged(h);
    let mut violations = Vec::new();
    let mut readable = 0usize;
    let mut put_lost_by_design: BTreeMap<&str, usize> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (object, expect) in &acked {
        let ack = h.ops.iter().find(|o| match &o.value {
            OpValue::Submit { replies, .. } => replies.first() == Some(object),
            OpValue::Put {
                object: Some(p), ..
            } => p == object,
            _ => false,
        });
        let Some(read) = finals.get(object.as_str()) else {
            violations.push(Violation {
                checker: NAME,
                message: format!("acknowledged object {object} was never read back"),
                witness: ack.into_iter().cloned().collect(),
            });
            continue;
        };
        if read.outcome == Outcome::Ok {
            readable += 1;
            continue;
        }
        let error = read.error.as_deref().unwrap_or("");
        let is_put = matches!(expect, Expect::Sha256 { .. });
        if is_put
            && error.contains("object lost")
            && let Some(fault) = ack.and_then(|a| excusing_fault(h, a, error))
        {
            *put_lost_by_design.entry(fault).or_default() += 1;
            continue;
        }
        let mut witness: Vec<_> = ack.into_iter().cloned().collect();
        witness.push((*read).clone());
        if !is_put && error.contains("task failed after") {
            warnings.push(Violation {
                checker: NAME,
                message: format!(
                    "acknowledged task output {object} failed for good: its retry budget ran out"
                ),
                witness,
            });
            continue;
        }
        let why = if is_put && error.contains("object lost") {
            match holder_named(error) {
                Some(w) => match h.node_of(w) {
                    Some(node) => {
                        format!(" (its holder {node} was not hit by a worker fault after the put)")
                    }
                    None => {
                        format!(" (its holder, worker {w}, was never seen in the cluster status)")
                    }
                },
                None => " (the error names no holder)".to_string(),
            }
        } else {
            String::new()
        };
        violations.push(Violation {
            checker: NAME,
            message: format!(
                "acknowledged object {object} cannot be read after the cluster healed: {}{why}",
                read.error.as_deref().unwrap_or("no answer")
            ),
            witness,
        });
    }
    CheckResult {
        checker: NAME,
        summary: json!({
            "acknowledged": acked.len(),
            "read_back": readable,
            "put_lost_with_their_worker": put_lost_by_design.values().sum::<usize>(),
            "put_lost_by_fault": put_lost_by_design,
            "task_retries_exhausted": warnings.len(),
        }),
        violations,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};

    fn submit(obj: &str) -> OpValue {
        OpValue::Submit {
            request_id: "r".into(),
            function: "fill".into(),
            expect: Expect::Fill { size: 8, seed: 1 },
            replies: vec![obj.into()],
        }
    }

    fn final_read(obj: &str, ok: bool) -> crate::history::Op {
        let mut o = op(
            999,
            obj,
            50,
            60,
            if ok { Outcome::Ok } else { Outcome::Fail },
            OpValue::Read {
                object: obj.into(),
                expect: Expect::Fill { size: 8, seed: 1 },
                got: ok.then(|| "x".into()),
                final_check: true,
            },
        );
        o.error = (!ok).then(|| "NotFound: no such object".into());
        o
    }

    #[test]
    fn a_readable_ack_passes_and_a_missing_one_is_flagged() {
        let good = History {
            ops: numbered(vec![
                op(0, "r", 0, 1, Outcome::Ok, submit("aa")),
                final_read("aa", true),
            ]),
            ..Default::default()
        };
        assert!(check(&good).violations.is_empty());
        let bad = History {
            ops: numbered(vec![
                op(0, "r", 0, 1, Outcome::Ok, submit("aa")),
                final_read("aa", false),
            ]),
            ..Default::default()
        };
        let r = check(&bad);
        assert_eq!(r.violations.len(), 1);
        assert_eq!(
            r.violations[0].witness.len(),
            2,
            "the ack and the failed read"
        );
        // A task that used up its retry budget failed, reported: a warning, not a violation.
        let mut exhausted = final_read("aa", false);
        exhausted.error = Some("task failed: task failed after 21 attempt(s): ...".into());
        let h = History {
            ops: numbered(vec![op(0, "r", 0, 1, Outcome::Ok, submit("aa")), exhausted]),
            ..Default::default()
        };
        assert!(check(&h).violations.is_empty());
        assert_eq!(check(&h).warnings.len(), 1);
        // An unacknowledged submission is not checked.
        let unacked = History {
            ops: numbered(vec![op(0, "r", 0, 1, Outcome::Unknown, submit("aa"))]),
            ..Default::default()
        };
        assert!(check(&unacked).violations.is_empty());
    }

    fn put(obj: &str) -> OpValue {
        OpValue::Put {
            size: 8,
            expect: Expect::Sha256 { hex: "ab".into() },
            object: Some(obj.into()),
        }
    }

    /// The final read of put `obj` that the head answered "object lost", naming `holder`.
    fn lost_put_read(obj: &str, holder: &str) -> crate::history::Op {
        let mut o = op(
            999,
            obj,
            50,
            60,
            Outcome::Fail,
            OpValue::Read {
                object: obj.into(),
                expect: Expect::Sha256 { hex: "ab".into() },
                got: None,
                final_check: true,
            },
        );
        o.error = Some(format!(
            "object lost: object {obj} was put on worker {holder}, which lost it (no heartbeat \
             for 1600 ms (lease 1500 ms)); put objects cannot be rebuilt"
        ));
        o
    }

    fn fault(nemesis: &str, target: &str, start: u64, end: u64) -> crate::history::Fault {
        crate::history::Fault {
            nemesis: nemesis.into(),
            target: target.into(),
            start_ms: start,
            end_ms: end,
            note: String::new(),
        }
    }

    fn seen(id: &str, node: &str) -> crate::history::WorkerSeen {
        crate::history::WorkerSeen {
            at_ms: 0,
            worker_id: id.into(),
            address: format!("addr-{node}"),
            node: Some(node.into()),
        }
    }

    #[test]
    fn a_lost_put_is_excused_only_when_its_own_holder_was_hit() {
        assert_eq!(
            holder_named("object lost: object aa was put on worker w1, which lost it (x)"),
            Some("w1")
        );
        let ops = numbered(vec![
            op(0, "aa", 10, 12, Outcome::Ok, put("aa")),
            lost_put_read("aa", "w1"),
        ]);
        let workers = vec![seen("w1", "worker-1"), seen("w2", "worker-2")];
        // Its holder, worker-1, was killed after the put: the loss the contract allows.
        let h = History {
            ops: ops.clone(),
            faults: vec![fault("worker-kill", "worker-1", 20, 25)],
            workers: workers.clone(),
            ..Default::default()
        };
        let r = check(&h);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.summary["put_lost_with_their_worker"], 1);
        // Paused, then cut off long enough to be declared dead (it registered anew at 42):
        // counted under the partition.
        let mut back = workers.clone();
        back.push(seen("w1b", "worker-1"));
        back[2].at_ms = 42;
        let h = History {
            ops: ops.clone(),
            faults: vec![
                fault("worker-pause", "worker-1", 20, 25),
                fault("partition", "worker-1", 30, 40),
            ],
            workers: back,
            ..Default::default()
        };
        let r = check(&h);
        assert!(r.violations.is_empty());
        assert_eq!(r.summary["put_lost_by_fault"]["partition"], 1);
        // Another worker was killed, not its holder: a violation.
        let h = History {
            ops: ops.clone(),
            faults: vec![fault("worker-kill", "worker-2", 20, 25)],
            workers: workers.clone(),
            ..Default::default()
        };
        let r = check(&h);
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].message.contains("worker-1 was not hit"));
        // Its holder was killed, but before the put was invoked: a violation.
        let h = History {
            ops: ops.clone(),
            faults: vec![fault("worker-kill", "worker-1", 1, 5)],
            workers: workers.clone(),
            ..Default::default()
        };
        assert_eq!(check(&h).violations.len(), 1);
        // Its holder only had its arena filled: a violation.
        let h = History {
            ops: ops.clone(),
            faults: vec![fault("arena-fill", "worker-1", 20, 25)],
            workers: workers.clone(),
            ..Default::default()
        };
        assert_eq!(check(&h).violations.len(), 1);
        // The holder was never seen (no way to tie it to a fault): a violation.
        let h = History {
            ops,
            faults: vec![fault("worker-kill", "worker-1", 20, 25)],
            ..Default::default()
        };
        assert_eq!(check(&h).violations.len(), 1);
    }
}
