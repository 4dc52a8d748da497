//! Breakers observed: the head's per-worker circuit breakers, polled through `ClusterStatus`
//! during the run. Every worker pause long enough to trip one must show it: the paused node's
//! breaker seen `open` after the pause began (and before the next fault on that node: the
//! status shows the replicated state, which can trail the leader's breaker by a few seconds
//! when writes are slow), then closed again: a transition to `closed` of the same worker, or
//! the node registering anew (a worker declared dead comes back under a new id, with a fresh
//! closed breaker). A state outside closed/open/half-open is a violation too.

use std::collections::BTreeMap;

use serde_json::json;

use super::{CheckResult, Violation};
use crate::history::{BreakerEvent, Fault, History};

/// Name in the report.
pub const NAME: &str = "breakers-observed";

const STATES: [&str; 4] = ["closed", "open", "half-open", ""];

/// Pauses at least this long must open the paused worker's breaker: it opens after 5 failed
/// probes (one per 500 ms heartbeat interval, each timing out after 400 ms), ~2.9 s into the
/// pause, and the poller looks twice a second.
pub const PAUSE_OPENS_BREAKER_MS: u64 = 4000;

/// The worker id of a breaker event (`"address id"`).
fn worker_id(e: &BreakerEvent) -> &str {
    e.worker.rsplit(' ').next().unwrap_or("")
}

/// What the history shows for one pause: when the open was seen and when the close was.
fn open_then_close(h: &History, f: &Fault) -> (Option<u64>, Option<u64>) {
    let of_node = |e: &&BreakerEvent| h.node_of(worker_id(e)) == Some(f.target.as_str());
    // The next fault on the same node opens its breaker for its own reasons.
    let next_fault = h
        .faults
        .iter()
        .filter(|g| g.target == f.target && g.start_ms > f.start_ms)
        .map(|g| g.start_ms)
        .min()
        .unwrap_or(u64::MAX);
    let opened = h
        .breakers
        .iter()
        .filter(of_node)
        .filter(|e| e.to == "open")
        .map(|e| e.at_ms)
        .find(|&t| t >= f.start_ms && t < next_fault);
    let Some(open_ms) = opened else {
        return (None, None);
    };
    let closed = h
        .breakers
        .iter()
        .filter(of_node)
        .filter(|e| e.to == "closed" && e.at_ms > open_ms)
        .map(|e| e.at_ms);
    let registered = h
        .workers
        .iter()
        .filter(|w| w.node.as_deref() == Some(f.target.as_str()) && w.at_ms > open_ms)
        .map(|w| w.at_ms);
    (Some(open_ms), closed.chain(registered).min())
}

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
    let mut pauses = Vec::new();
    for f in h.faults.iter().filter(|f| f.nemesis == "worker-pause") {
        let required = f.end_ms - f.start_ms >= PAUSE_OPENS_BREAKER_MS;
        let (open, close) = open_then_close(h, f);
        pauses.push(json!({
            "target": f.target, "start_ms": f.start_ms, "end_ms": f.end_ms,
            "required": required, "open_seen_ms": open, "closed_seen_ms": close,
        }));
        if !required {
            continue;
        }
        let what = match (open, close) {
            (None, _) => "its breaker was never seen open",
            (Some(_), None) => "its breaker was seen open but never closed again",
            (Some(_), Some(_)) => continue,
        };
        violations.push(Violation {
            checker: NAME,
            message: format!(
                "worker-pause of {} ({} to {} ms): {what}",
                f.target, f.start_ms, f.end_ms
            ),
            witness: vec![],
        });
    }
    let opened = h.breakers.iter().filter(|e| e.to == "open").count();
    CheckResult {
        checker: NAME,
        summary: json!({
            "transitions": h.breakers.len(),
            "opened": opened,
            "pauses": pauses,
            "per_worker": per,
        }),
        violations,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::WorkerSeen;

    fn ev(at: u64, id: &str, from: &str, to: &str) -> BreakerEvent {
        BreakerEvent {
            at_ms: at,
            worker: format!("127.0.0.1:9 {id}"),
            from: from.into(),
            to: to.into(),
        }
    }

    fn seen(at: u64, id: &str, node: &str) -> WorkerSeen {
        WorkerSeen {
            at_ms: at,
            worker_id: id.into(),
            address: "127.0.0.1:9".into(),
            node: Some(node.into()),
        }
    }

    fn pause(start: u64, end: u64) -> Fault {
        Fault {
            nemesis: "worker-pause".into(),
            target: "worker-1".into(),
            start_ms: start,
            end_ms: end,
            note: String::new(),
        }
    }

    fn history(breakers: Vec<BreakerEvent>, workers: Vec<WorkerSeen>) -> History {
        History {
            faults: vec![pause(10_000, 15_000)],
            breakers,
            workers,
            ..Default::default()
        }
    }

    #[test]
    fn a_pause_must_open_and_close_the_breaker() {
        let w = vec![seen(0, "w1", "worker-1"), seen(0, "w2", "worker-2")];
        // Open during the pause, closed after it: passes.
        let ok = history(
            vec![
                ev(13_000, "w1", "closed", "open"),
                ev(16_000, "w1", "open", "half-open"),
                ev(16_500, "w1", "half-open", "closed"),
            ],
            w.clone(),
        );
        assert!(check(&ok).violations.is_empty());
        // Declared dead while open, back under a new id: that closes it too.
        let mut back = w.clone();
        back.push(seen(17_000, "w1b", "worker-1"));
        let reregistered = history(vec![ev(13_000, "w1", "closed", "open")], back);
        assert!(check(&reregistered).violations.is_empty());
        // No open and no close seen: a violation.
        let none = history(vec![], w.clone());
        let v = check(&none).violations;
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("never seen open"), "{v:?}");
        // Only another worker's breaker opened: a violation.
        let other = history(
            vec![
                ev(13_000, "w2", "closed", "open"),
                ev(16_000, "w2", "open", "closed"),
            ],
            w.clone(),
        );
        assert_eq!(check(&other).violations.len(), 1);
        // Open but never closed again: a violation.
        let stuck = history(vec![ev(13_000, "w1", "closed", "open")], w.clone());
        let v = check(&stuck).violations;
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("never closed"), "{v:?}");
        // Seen open late (the replicated state trailed), before the node's next fault: passes;
        // an open seen only after the node's next fault began belongs to that fault.
        let late = history(
            vec![
                ev(19_800, "w1", "closed", "open"),
                ev(20_300, "w1", "open", "closed"),
            ],
            w.clone(),
        );
        assert!(check(&late).violations.is_empty());
        let mut killed = late.clone();
        killed.faults.push(Fault {
            nemesis: "worker-kill".into(),
            target: "worker-1".into(),
            start_ms: 19_000,
            end_ms: 22_000,
            note: String::new(),
        });
        assert_eq!(check(&killed).violations.len(), 1);
        // A pause too short to trip the breaker requires nothing.
        let short = History {
            faults: vec![pause(10_000, 12_000)],
            ..none
        };
        assert!(check(&short).violations.is_empty());
    }
}
