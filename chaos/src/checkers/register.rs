//! Linearizability of the named-actor register (create with a name, lookup, kill), checked per
//! name with the WGL search in [`super::linearizable`].
//!
//! The model follows the head's contract: a name maps to at most one live actor; `create`
//! succeeds with a fresh id only when the name is free, else ALREADY_EXISTS; `kill` kills the
//! actor the name resolves to and frees the name (killing an already-dead actor of that name
//! answers with its id and changes nothing); `lookup` returns the live actor, else the most
//! recent dead one (`dead`), else NOT_FOUND. An ambiguous create whose id we never learned is a
//! placeholder bound by the first answer that names an id.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::linearizable::{Entry, Model, Verdict, analyze, shrink};
use super::{CheckResult, Violation};
use crate::history::{History, Op, OpValue, Outcome, RegisterOp, RegisterResult};

/// Name in the report.
pub const NAME: &str = "named-actor-linearizable";

/// Search steps allowed per name (a run's histories need a tiny fraction of this).
const BUDGET: u64 = 50_000_000;

/// The register of one name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct NameState {
    /// The live actor holding the name.
    current: Option<String>,
    /// The most recently created actor with the name.
    last: Option<String>,
    /// Actors with the name that were killed.
    dead: BTreeSet<String>,
}

impl NameState {
    fn bind(&self, placeholder: &str, id: &str) -> Self {
        let sub = |o: &Option<String>| {
            o.as_ref().map(|v| {
                if v == placeholder {
                    id.to_string()
                } else {
                    v.clone()
                }
            })
        };
        Self {
            current: sub(&self.current),
            last: sub(&self.last),
            dead: self
                .dead
                .iter()
                .map(|v| {
                    if v == placeholder {
                        id.to_string()
                    } else {
                        v.clone()
                    }
                })
                .collect(),
        }
    }

    /// `slot` names `id` (or a placeholder that can be bound to it): the state with it bound.
    fn matches(&self, slot: &Option<String>, id: &str) -> Option<Self> {
        match slot {
            Some(v) if v == id => Some(self.clone()),
            Some(v) if v.starts_with('?') => Some(self.bind(&v.clone(), id)),
            _ => None,
        }
    }
}

/// A register operation with its result (`None`: unknown outcome) and its history index.
#[derive(Clone, Debug)]
pub struct RegOp {
    /// What was done.
    pub op: RegisterOp,
    /// The answer, if definite.
    pub result: Option<RegisterResult>,
    /// Index in the history (names placeholders).
    pub index: usize,
}

/// The sequential specification of one name.
pub struct NamedActor;

impl Model for NamedActor {
    type State = NameState;
    type Op = RegOp;

    fn init(&self) -> NameState {
        NameState::default()
    }

    fn step(&self, s: &NameState, op: &RegOp) -> Option<NameState> {
        use RegisterResult::*;
        match (op.op, &op.result) {
            (RegisterOp::Create, Some(Actor { id, .. })) => {
                s.current.is_none().then(|| NameState {
                    current: Some(id.clone()),
                    last: Some(id.clone()),
                    dead: s.dead.clone(),
                })
            }
            (RegisterOp::Create, Some(Taken)) => s.current.is_some().then(|| s.clone()),
            (RegisterOp::Create, None) => Some(if s.current.is_none() {
                let p = format!("?{}", op.index);
                NameState {
                    current: Some(p.clone()),
                    last: Some(p),
                    dead: s.dead.clone(),
                }
            } else {
                s.clone()
            }),
            (RegisterOp::Lookup, Some(Actor { id, dead: false })) => s.matches(&s.current, id),
            (RegisterOp::Lookup, Some(Actor { id, dead: true })) => {
                if s.current.is_some() {
                    return None;
                }
                s.matches(&s.last, id)
            }
            (RegisterOp::Lookup | RegisterOp::Kill, Some(NotFound)) => {
                s.last.is_none().then(|| s.clone())
            }
            (RegisterOp::Lookup, None) => Some(s.clone()),
            (RegisterOp::Kill, Some(Actor { id, .. })) => {
                if let Some(mut t) = s.matches(&s.current, id) {
                    t.current = None;
                    t.dead.insert(id.clone());
                    return Some(t);
                }
                // The name resolved to an actor already dead: no change.
                (s.dead.contains(id) || s.dead.iter().any(|d| d.starts_with('?')))
                    .then(|| s.clone())
            }
            (RegisterOp::Kill, None) => {
                let mut t = s.clone();
                if let Some(c) = t.current.take() {
                    t.dead.insert(c);
                }
                Some(t)
            }
            (_, Some(Taken)) | (RegisterOp::Create, Some(NotFound)) => None,
        }
    }
}

/// The WGL entries of one name's ops (definite failures did nothing and are left out).
pub fn entries(ops: &[&Op]) -> Vec<Entry<RegOp>> {
    ops.iter()
        .filter_map(|o| {
            let OpValue::Register { op, result } = &o.value else {
                return None;
            };
            let ret = match o.outcome {
                Outcome::Ok => o.complete_ms,
                Outcome::Unknown => u64::MAX,
                Outcome::Fail => return None,
            };
            Some(Entry {
                call: o.invoke_ms,
                ret,
                op: RegOp {
                    op: *op,
                    result: if o.outcome == Outcome::Ok {
                        result.clone()
                    } else {
                        None
                    },
                    index: o.index,
                },
            })
        })
        .collect()
}

/// Run the check. A name whose search runs out of budget is a warning (nothing is claimed
/// either way), which fails a `--strict` run.
pub fn check(h: &History) -> CheckResult {
    check_within(h, BUDGET)
}

/// [`check`] with `budget` search steps per name.
pub fn check_within(h: &History, budget: u64) -> CheckResult {
    let mut by_name: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &h.ops {
        if matches!(op.value, OpValue::Register { .. }) {
            by_name.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    let mut summary = serde_json::Map::new();
    for (name, ops) in &by_name {
        let all = entries(ops);
        let n = all.len();
        let verdict = analyze(&NamedActor, &all, budget);
        summary.insert(
            name.to_string(),
            json!({ "ops": ops.len(), "searched": n, "verdict": format!("{verdict:?}") }),
        );
        if verdict == Verdict::Inconclusive {
            warnings.push(Violation {
                checker: NAME,
                message: format!(
                    "the linearizability search on the name {name:?} ({n} ops) ran out of its \
                     budget of {budget} steps: inconclusive, nothing is claimed either way"
                ),
                witness: vec![],
            });
        }
        if verdict == Verdict::NotLinearizable {
            let keep = shrink(&NamedActor, &all, 300);
            let witness: Vec<Op> = keep
                .iter()
                .filter_map(|&k| h.ops.get(all[k].op.index).cloned())
                .collect();
            violations.push(Violation {
                checker: NAME,
                message: format!(
                    "operations on the name {name:?} are not linearizable ({} of {n} ops form a minimal witness)",
                    witness.len()
                ),
                witness,
            });
        }
    }
    CheckResult {
        checker: NAME,
        summary: serde_json::Value::Object(summary),
        violations,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};

    fn reg(t0: u64, t1: u64, o: RegisterOp, r: Option<RegisterResult>) -> Op {
        let outcome = if r.is_some() {
            Outcome::Ok
        } else {
            Outcome::Unknown
        };
        op(
            0,
            "n",
            t0,
            t1,
            outcome,
            OpValue::Register { op: o, result: r },
        )
    }

    fn id(s: &str, dead: bool) -> Option<RegisterResult> {
        Some(RegisterResult::Actor { id: s.into(), dead })
    }

    fn violations(ops: Vec<Op>) -> Vec<Violation> {
        check(&History {
            ops: numbered(ops),
            ..Default::default()
        })
        .violations
    }

    #[test]
    fn a_legal_history_passes() {
        use RegisterOp::*;
        let v = violations(vec![
            reg(0, 10, Lookup, Some(RegisterResult::NotFound)),
            reg(5, 20, Create, id("a1", false)),
            reg(8, 25, Create, Some(RegisterResult::Taken)),
            reg(30, 40, Lookup, id("a1", false)),
            reg(45, 50, Kill, id("a1", true)),
            reg(55, 60, Lookup, id("a1", true)),
            reg(61, 70, Kill, id("a1", true)),
            reg(71, 80, Create, None),
            reg(90, 95, Lookup, id("b2", false)),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_lost_acknowledged_create_is_not_linearizable() {
        use RegisterOp::*;
        // create(a1) was acknowledged at 20; a lookup invoked later finds no actor ever named.
        let v = violations(vec![
            reg(0, 5, Lookup, Some(RegisterResult::NotFound)),
            reg(10, 20, Create, id("a1", false)),
            reg(25, 30, Lookup, id("a1", false)),
            reg(40, 50, Lookup, Some(RegisterResult::NotFound)),
            reg(60, 70, Create, id("b1", false)),
        ]);
        assert_eq!(v.len(), 1);
        let w: Vec<usize> = v[0].witness.iter().map(|o| o.index).collect();
        assert_eq!(w, vec![1, 3], "create acked, then not found: {w:?}");
    }

    #[test]
    fn two_creates_cannot_both_win() {
        use RegisterOp::*;
        let v = violations(vec![
            reg(0, 10, Create, id("a1", false)),
            reg(0, 10, Create, id("b1", false)),
        ]);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn an_inconclusive_search_is_reported_and_fails_strict() {
        use RegisterOp::*;
        let h = History {
            ops: numbered(vec![
                reg(0, 10, Create, id("a1", false)),
                reg(2, 12, Lookup, id("a1", false)),
                reg(20, 30, Kill, id("a1", true)),
                reg(40, 50, Lookup, id("a1", true)),
            ]),
            ..Default::default()
        };
        assert!(check(&h).warnings.is_empty(), "enough budget: conclusive");
        let r = check_within(&h, 2);
        assert!(r.violations.is_empty());
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].message.contains("inconclusive"));
        assert_eq!(r.summary["n"]["verdict"], "Inconclusive");
        // A warning passes a plain run and fails a strict one.
        let mut cfg = crate::config::RunConfig::for_tests();
        let plain = crate::report::Report::build(
            cfg.clone(),
            vec![],
            1.0,
            h.clone(),
            vec![r.clone()],
            vec![],
        );
        assert!(plain.violations.is_empty());
        assert_eq!(plain.warnings.len(), 1);
        cfg.strict = true;
        let strict = crate::report::Report::build(cfg, vec![], 1.0, h, vec![r], vec![]);
        assert_eq!(strict.violations.len(), 1);
        assert!(strict.warnings.is_empty());
    }
}
