//! Breaker transitions observed: the head's per-worker circuit breakers, polled through
//! `ClusterStatus` during the run. Reported per worker (the contract is that they are visible);
//! a state outside closed/open/half-open is a violation.

use std::collections::BTreeMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::History;

/// Name in the report.
pub const NAME: &str = "breakers-observed";

const STATES: [&str; 4] = ["closed", "open", "half-open", ""];

/// Run the check.
pub fn check(h: &History) -> CheckResult {
    let mut per: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut violations = Vec::new();
    for e in &h.breakers {
        per.entry(e.worker.as_str())
            .or_default()
            .push(format!("{} ms: {} -> {}", e.at_ms, e.from, e.to));
        if !STATES.contains(&e.to.as_str()) {
            violations.push(Violation {
                checker: NAME,
                message: format!("worker {} reported breaker state {:?}", e.worker, e.to),
                witness: vec![],
            });
        }
    }
    let opened = h.breakers.iter().filter(|e| e.to == "open").count();
    CheckResult {
        checker: NAME,
        summary: json!({ "transitions": h.breakers.len(), "opened": opened, "per_worker": per }),
        violations,
    }
}
