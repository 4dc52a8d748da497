//! Counter values follow the declared semantics. Counter actors are called with no
//! transparent retries, so each call applies **at most once**: an acknowledged `incr` applied
//! exactly once, an ambiguous one zero or one time, a failed one never. Actor state is volatile:
//! a restart (its worker died) starts again from 0, which is allowed only when the actor's
//! restart count went up. Each process calls its own counter in sequence, so between two
//! acknowledged values the possible range is known exactly.

use std::collections::BTreeMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{History, Op, OpValue, Outcome};

/// Name in the report.
pub const NAME: &str = "counter-at-most-once";

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    let mut by_counter: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &h.ops {
        if matches!(op.value, OpValue::Counter { .. }) {
            by_counter.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut violations = Vec::new();
    let (mut resets, mut calls) = (0usize, 0usize);
    for (name, mut ops) in by_counter {
        ops.sort_by_key(|o| (o.invoke_ms, o.index));
        // Possible values now: lo..=hi. Ops since the last acknowledged value, for witnesses.
        let (mut lo, mut hi) = (0i64, 0i64);
        let mut baseline = 0u32;
        let mut since: Vec<Op> = Vec::new();
        for op in ops {
            calls += 1;
            let OpValue::Counter {
                method,
                value,
                restarts,
            } = &op.value
            else {
                continue;
            };
            let incr = method == "incr";
            since.push(op.clone());
            match (op.outcome, value) {
                (Outcome::Ok, Some(v)) => {
                    let v = *v;
                    let (min, max) = if incr { (lo + 1, hi + 1) } else { (lo, hi) };
                    let restarted = restarts.is_some_and(|r| r > baseline);
                    let reset_max = if incr { hi - lo + 1 } else { hi - lo };
                    let fine = (min..=max).contains(&v);
                    let reset_fine = restarted && (i64::from(incr)..=reset_max).contains(&v);
                    if !fine && reset_fine {
                        resets += 1;
                    } else if !fine {
                        let what = if v > max {
                            "an increment applied more than once"
                        } else {
                            "acknowledged increments were lost without an actor restart"
                        };
                        violations.push(Violation {
                            checker: NAME,
                            message: format!(
                                "counter {name}: {method} returned {v}, expected {min}..={max} ({what})"
                            ),
                            witness: std::mem::take(&mut since),
                        });
                    }
                    if let Some(r) = restarts {
                        baseline = baseline.max(*r);
                    }
                    lo = v;
                    hi = v;
                    since.clear();
                    since.push(op.clone());
                }
                (Outcome::Unknown, _) if incr => hi += 1,
                _ => {}
            }
        }
    }
    CheckResult {
        checker: NAME,
        summary: json!({
            "semantics": "at-most-once per call; state reset only by an actor restart",
            "calls": calls,
            "resets_after_restart": resets,
        }),
        violations,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};

    fn call(method: &str, outcome: Outcome, value: Option<i64>, restarts: Option<u32>) -> Op {
        op(
            0,
            "c",
            0,
            1,
            outcome,
            OpValue::Counter {
                method: method.into(),
                value,
                restarts,
            },
        )
    }

    fn run(ops: Vec<Op>) -> usize {
        let mut ops = numbered(ops);
        for (i, o) in ops.iter_mut().enumerate() {
            o.invoke_ms = i as u64 * 10;
            o.complete_ms = o.invoke_ms + 5;
        }
        check(&History {
            ops,
            ..Default::default()
        })
        .violations
        .len()
    }

    #[test]
    fn at_most_once_is_enforced() {
        use Outcome::*;
        // 1, 2, (unknown), 4 or 3 are both fine; get must agree.
        assert_eq!(
            run(vec![
                call("incr", Ok, Some(1), None),
                call("incr", Ok, Some(2), None),
                call("incr", Unknown, None, None),
                call("incr", Ok, Some(4), None),
                call("get", Ok, Some(4), None),
            ]),
            0
        );
        // A jump of two with no ambiguous call in between: applied twice.
        assert_eq!(
            run(vec![
                call("incr", Ok, Some(1), None),
                call("incr", Ok, Some(3), None)
            ]),
            1
        );
        // Back to 1 without a restart: lost increments.
        assert_eq!(
            run(vec![
                call("incr", Ok, Some(1), None),
                call("incr", Ok, Some(2), None),
                call("incr", Ok, Some(1), Some(0)),
            ]),
            1
        );
        // Back to 1 after a restart: allowed.
        assert_eq!(
            run(vec![
                call("incr", Ok, Some(1), None),
                call("incr", Ok, Some(2), None),
                call("incr", Ok, Some(1), Some(1)),
                call("get", Ok, Some(1), None),
            ]),
            0
        );
    }
}
