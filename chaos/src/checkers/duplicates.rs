//! No retried submission ran as a second task: every submission is sent again with the same
//! request id after it was acknowledged (and retried with it after ambiguous failures), and
//! every answer for one request id must name the same task (the same return object).

use std::collections::BTreeMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{History, Op, OpValue};

/// Name in the report.
pub const NAME: &str = "no-duplicate-task";

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    let mut by_request: BTreeMap<&str, Vec<(&Op, &String)>> = BTreeMap::new();
    for op in &h.ops {
        if let OpValue::Submit {
            request_id,
            replies,
            ..
        } = &op.value
        {
            for r in replies {
                by_request
                    .entry(request_id.as_str())
                    .or_default()
                    .push((op, r));
            }
        }
    }
    let mut violations = Vec::new();
    let mut retried = 0usize;
    for (request_id, answers) in &by_request {
        if answers.len() > 1 {
            retried += 1;
        }
        let first = answers[0].1;
        if let Some((_, other)) = answers.iter().find(|(_, r)| *r != first) {
            let mut witness: Vec<Op> = answers.iter().map(|(o, _)| (*o).clone()).collect();
            witness.dedup_by_key(|o| o.index);
            violations.push(Violation {
                checker: NAME,
                message: format!(
                    "request {request_id} was answered with two tasks: objects {first} and {other}"
                ),
                witness,
            });
        }
    }
    CheckResult {
        checker: NAME,
        summary: json!({
            "submissions": by_request.len(),
            "answered_more_than_once": retried,
        }),
        violations,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};
    use crate::history::{Expect, Outcome};

    fn submit(replies: &[&str]) -> Op {
        op(
            0,
            "r1",
            0,
            5,
            Outcome::Ok,
            OpValue::Submit {
                request_id: "r1".into(),
                function: "fill".into(),
                expect: Expect::Fill { size: 1, seed: 1 },
                replies: replies.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    #[test]
    fn same_answer_passes_second_task_fails() {
        let h = History {
            ops: numbered(vec![submit(&["a1", "a1"])]),
            ..Default::default()
        };
        assert!(check(&h).violations.is_empty());
        let h = History {
            ops: numbered(vec![submit(&["a1", "b1"])]),
            ..Default::default()
        };
        let r = check(&h);
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].message.contains("two tasks"));
    }
}
