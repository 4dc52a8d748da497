//! Digests match recomputation: every successful read (during the run and in the final phase)
//! returned exactly what the object must hold: `fill` output is recomputed here (splitmix64),
//! a `digest` result must be the SHA-256 of that, a put must read back with its SHA-256.

use std::collections::HashMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{Expect, History, OpValue, Outcome};
use crate::rng::{fill_bytes, sha256_hex};

/// Name in the report.
pub const NAME: &str = "digests-match";

/// What a read of an object with this expectation must return (hex SHA-256 of the bytes, or
/// the text of a digest).
pub fn expected(e: &Expect, cache: &mut HashMap<(u64, u64), String>) -> String {
    match e {
        Expect::Fill { size, seed } | Expect::DigestOfFill { size, seed } => cache
            .entry((*size, *seed))
            .or_insert_with(|| sha256_hex(&fill_bytes(*size as usize, *seed)))
            .clone(),
        Expect::Sha256 { hex } => hex.clone(),
    }
}

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    let mut cache = HashMap::new();
    let mut violations = Vec::new();
    let mut checked = 0usize;
    for op in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let OpValue::Read {
            object,
            expect,
            got: Some(got),
            ..
        } = &op.value
        else {
            continue;
        };
        checked += 1;
        let want = expected(expect, &mut cache);
        if *got != want {
            violations.push(Violation {
                checker: NAME,
                message: format!("object {object} read as {got}, recomputation gives {want}"),
                witness: vec![op.clone()],
            });
        }
    }
    CheckResult {
        checker: NAME,
        summary: json!({ "reads_checked": checked, "distinct_fills_recomputed": cache.len() }),
        violations,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::fake::{numbered, op};

    fn read(expect: Expect, got: &str) -> crate::history::Op {
        op(
            0,
            "o",
            0,
            1,
            Outcome::Ok,
            OpValue::Read {
                object: "o".into(),
                expect,
                got: Some(got.into()),
                final_check: false,
            },
        )
    }

    #[test]
    fn right_digest_passes_wrong_one_fails() {
        let right = sha256_hex(&fill_bytes(1000, 5));
        let h = History {
            ops: numbered(vec![
                read(
                    Expect::DigestOfFill {
                        size: 1000,
                        seed: 5,
                    },
                    &right,
                ),
                read(
                    Expect::Fill {
                        size: 1000,
                        seed: 5,
                    },
                    &right,
                ),
            ]),
            ..Default::default()
        };
        assert!(check(&h).violations.is_empty());
        let h = History {
            ops: numbered(vec![read(
                Expect::DigestOfFill {
                    size: 1000,
                    seed: 6,
                },
                &right,
            )]),
            ..Default::default()
        };
        assert_eq!(check(&h).violations.len(), 1);
    }
}
