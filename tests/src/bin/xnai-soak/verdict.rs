//! The flatness verdict of a soak (issue 14): after warm-up, each measured value at the end of
//! the load must be within a tolerance (10 %) of its value at the reference point (100,000
//! tasks). Values that are small counts of in-flight work (state entries) get an absolute
//! slack as well, since 10 % of a few hundred is less than the noise of 64 tasks in flight.

use crate::sample::Sample;

/// One measured value compared between the reference and the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was measured ("head 1 RSS", "state bytes", ...).
    pub name: String,
    /// Its value at the reference sample and at the end.
    pub reference: f64,
    pub end: f64,
    /// Allowed absolute difference (tolerance x reference, or the slack if larger).
    pub allowed: f64,
}

impl Check {
    /// Whether the end value is within the allowed difference of the reference.
    pub fn flat(&self) -> bool {
        (self.end - self.reference).abs() <= self.allowed
    }

    /// End / reference (1.0 when the reference is 0 and so is the end).
    pub fn ratio(&self) -> f64 {
        if self.reference == 0.0 {
            if self.end == 0.0 { 1.0 } else { f64::INFINITY }
        } else {
            self.end / self.reference
        }
    }
}

/// The reference sample: the first load sample with at least `at` tasks done.
pub fn reference(samples: &[Sample], at: u64) -> Option<&Sample> {
    samples.iter().find(|s| s.phase == "load" && s.done >= at)
}

/// Compare `end` against `reference`: each head's RSS, the state's entries (with
/// `entries_slack`) and bytes, and each head's data directory.
pub fn checks(reference: &Sample, end: &Sample, tolerance: f64, entries_slack: f64) -> Vec<Check> {
    let check = |name: String, r: u64, e: u64, slack: f64| Check {
        name,
        reference: r as f64,
        end: e as f64,
        allowed: (r as f64 * tolerance).max(slack),
    };
    let mut out = vec![];
    for h in &reference.heads {
        if let Some(e) = end.head(h.id) {
            out.push(check(
                format!("head {} RSS", h.id),
                h.rss.total,
                e.rss.total,
                0.0,
            ));
        }
    }
    out.push(check(
        "state entries".into(),
        reference.state_entries,
        end.state_entries,
        entries_slack,
    ));
    out.push(check(
        "state bytes (= snapshot payload)".into(),
        reference.state_bytes,
        end.state_bytes,
        0.0,
    ));
    for h in &reference.heads {
        if let Some(e) = end.head(h.id) {
            out.push(check(
                format!("head {} data dir", h.id),
                h.data_bytes,
                e.data_bytes,
                0.0,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{HeadSample, Rss};

    fn sample(done: u64, rss: u64, entries: u64) -> Sample {
        Sample {
            phase: "load",
            done,
            state_entries: entries,
            state_bytes: 1000,
            heads: vec![HeadSample {
                id: 1,
                rss: Rss {
                    total: rss,
                    ..Default::default()
                },
                data_bytes: 10,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn flat_within_tolerance_or_slack_and_not_beyond() {
        let s = [
            sample(50, 80, 100),
            sample(100, 100, 100),
            sample(900, 109, 290),
        ];
        let r = reference(&s, 100).expect("a reference");
        assert_eq!(r.done, 100);
        let c = checks(r, &s[2], 0.10, 256.0);
        assert!(c.iter().all(Check::flat), "{c:?}");
        let grown = sample(900, 111, 100);
        let c = checks(r, &grown, 0.10, 256.0);
        let rss = c.iter().find(|c| c.name == "head 1 RSS").expect("rss");
        assert!(!rss.flat() && (rss.ratio() - 1.11).abs() < 1e-9, "{rss:?}");
        assert!(reference(&s, 1000).is_none());
    }
}
