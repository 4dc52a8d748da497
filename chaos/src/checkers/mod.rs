//! Checkers: each reads the finished history and returns what it found; one invariant per
//! file. A violation carries a witness: the smallest part of the history that shows it.

pub mod acked_lost;
pub mod breakers;
pub mod counters;
pub mod digests;
pub mod duplicates;
pub mod linearizable;
pub mod recovery;
pub mod register;

use serde::Serialize;

use crate::history::{History, Op};

/// One broken invariant.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// The checker that found it.
    pub checker: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The operations that show it (a minimal subset where the checker can shrink).
    pub witness: Vec<Op>,
}

/// What one checker found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// Checker name.
    pub checker: &'static str,
    /// What it looked at and concluded, for the report.
    pub summary: serde_json::Value,
    /// What it found broken.
    pub violations: Vec<Violation>,
    /// What it could not rule out or found reported rather than silently broken: not a
    /// violation unless the run is `--strict` (then every warning fails the run).
    pub warnings: Vec<Violation>,
}

/// Run every checker.
pub fn check_all(h: &History) -> Vec<CheckResult> {
    vec![
        acked_lost::check(h),
        digests::check(h),
        duplicates::check(h),
        counters::check(h),
        register::check(h),
        recovery::check(h),
        breakers::check(h),
    ]
}

#[cfg(test)]
pub(crate) mod fake {
    //! Building blocks for hand-written histories in the checkers' tests.
    use crate::history::{Op, OpValue, Outcome};

    /// An op of process `p` on `key` from `t0` to `t1`.
    pub fn op(p: usize, key: &str, t0: u64, t1: u64, outcome: Outcome, value: OpValue) -> Op {
        Op {
            index: 0,
            process: p,
            key: key.into(),
            invoke_ms: t0,
            complete_ms: t1,
            outcome,
            value,
            error: None,
        }
    }

    /// Number the ops as a recorder would.
    pub fn numbered(mut ops: Vec<Op>) -> Vec<Op> {
        for (i, o) in ops.iter_mut().enumerate() {
            o.index = i;
        }
        ops
    }
}
