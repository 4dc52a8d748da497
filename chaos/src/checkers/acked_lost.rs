//! No acknowledged result lost: every object the cluster acknowledged (a task submission's
//! output, a put) is read back in the final phase, after every fault is healed, and the read
//! must succeed. The one loss the contract allows: a put object (which has no lineage) whose
//! only copy was on a worker the head declared dead (killed, or paused / cut off / slowed past
//! its heartbeat lease: it then re-registers empty) fails with "object lost"; those are
//! counted, not flagged, when such a worker fault came after the put.

use std::collections::HashMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{Expect, History, OpValue, Outcome};
use crate::workload::verify::acknowledged;

/// Name in the report.
pub const NAME: &str = "acked-not-lost";

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    analyse(h).0
}

/// Acknowledged task outputs that failed for good because the task used up its whole retry
/// budget on system errors (e.g. its argument's only holder died and every retry failed to
/// pull it before the head declared that worker dead). The cluster reported the failure
/// instead of losing the object silently, so this is a warning, not a violation, unless the
/// run is `--strict`.
pub fn warnings(h: &History) -> Vec<Violation> {
    analyse(h).1
}

fn analyse(h: &History) -> (CheckResult, Vec<Violation>) {
    let mut finals: HashMap<&str, &crate::history::Op> = HashMap::new();
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
    let (mut readable, mut put_lost_by_design) = (0usize, 0usize);
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
        let is_put = matches!(expect, Expect::Sha256 { .. });
        let lost_text = read.error.as_deref().unwrap_or("").contains("object lost");
        let worker_died_after = ack.is_some_and(|a| {
            h.faults.iter().any(|f| {
                f.target.starts_with("worker")
                    && f.nemesis != "arena-fill"
                    && f.start_ms >= a.invoke_ms
            })
        });
        if is_put && lost_text && worker_died_after {
            put_lost_by_design += 1;
            continue;
        }
        let mut witness: Vec<_> = ack.into_iter().cloned().collect();
        witness.push((*read).clone());
        if !is_put
            && read
                .error
                .as_deref()
                .unwrap_or("")
                .contains("task failed after")
        {
            warnings.push(Violation {
                checker: NAME,
                message: format!(
                    "acknowledged task output {object} failed for good: its retry budget ran out"
                ),
                witness,
            });
            continue;
        }
        violations.push(Violation {
            checker: NAME,
            message: format!(
                "acknowledged object {object} cannot be read after the cluster healed: {}",
                read.error.as_deref().unwrap_or("no answer")
            ),
            witness,
        });
    }
    let result = CheckResult {
        checker: NAME,
        summary: json!({
            "acknowledged": acked.len(),
            "read_back": readable,
            "put_lost_with_their_worker": put_lost_by_design,
            "task_retries_exhausted": warnings.len(),
        }),
        violations,
    };
    (result, warnings)
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
        assert_eq!(warnings(&h).len(), 1);
        // An unacknowledged submission is not checked.
        let unacked = History {
            ops: numbered(vec![op(0, "r", 0, 1, Outcome::Unknown, submit("aa"))]),
            ..Default::default()
        };
        assert!(check(&unacked).violations.is_empty());
    }
}
