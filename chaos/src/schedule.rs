//! The fault schedule: a pure function of the seed, the chosen nemeses and the run's length.
//! Kinds are drawn in seeded rounds (every kind once per round). Faults come one at a time
//! (inject, hold for a window, heal, quiet gap), so at most one head is ever down and the run
//! always ends healed, with a quiet tail before the final checks.

use std::time::Duration;

use serde::Serialize;

use crate::config::NemesisKind;
use crate::rng::Rng;

/// Which node a step aims at; resolved when it runs (the leader is whoever leads then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aim {
    /// Worker with this index (0-based).
    Worker(usize),
    /// Head with this index (0-based).
    Head(usize),
    /// The current Raft leader.
    Leader,
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Offset from the start of the run.
    pub at: Duration,
    /// The nemesis.
    pub kind: NemesisKind,
    /// Its target.
    pub aim: Aim,
    /// How long the fault lasts before it is healed.
    pub window: Duration,
}

/// Quiet time before the first fault (the workload warms up) and after the last one.
pub const WARMUP: Duration = Duration::from_secs(5);
/// See [`WARMUP`].
pub const COOLDOWN: Duration = Duration::from_secs(8);

/// The schedule for a run of `duration` over `heads` heads and `workers` workers.
pub fn plan(
    seed: u64,
    kinds: &[NemesisKind],
    duration: Duration,
    heads: usize,
    workers: usize,
) -> Vec<Step> {
    let mut rng = Rng::derive(seed, "schedule");
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let mut t = WARMUP;
    let mut round: Vec<NemesisKind> = Vec::new();
    loop {
        // Kinds come in rounds, each kind once per round in a seeded order, so a run long
        // enough for one round exercises every nemesis asked for.
        if round.is_empty() {
            round = kinds.to_vec();
            for i in (1..round.len()).rev() {
                round.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let kind = round.pop().unwrap_or(kinds[0]);
        let window = Duration::from_millis(rng.range(3000, 7000));
        if t + window + COOLDOWN > duration {
            break;
        }
        let aim = match kind {
            NemesisKind::WorkerKill | NemesisKind::WorkerPause | NemesisKind::ArenaFill => {
                Aim::Worker(rng.below(workers as u64) as usize)
            }
            NemesisKind::LeaderKill => Aim::Leader,
            NemesisKind::HeadKill => Aim::Head(rng.below(heads as u64) as usize),
            NemesisKind::Partition | NemesisKind::SlowLink => {
                // One in three aims at whichever head leads then (the interesting head), else
                // at any node.
                let n = rng.below((heads + workers) as u64) as usize;
                if rng.below(3) == 0 {
                    Aim::Leader
                } else if n < heads {
                    Aim::Head(n)
                } else {
                    Aim::Worker(n - heads)
                }
            }
        };
        out.push(Step {
            at: t,
            kind,
            aim,
            window,
        });
        t += window + Duration::from_millis(rng.range(2500, 5000));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_it_fits() {
        let d = Duration::from_secs(100);
        let a = plan(42, &NemesisKind::ALL, d, 3, 3);
        assert_eq!(a, plan(42, &NemesisKind::ALL, d, 3, 3));
        assert_ne!(a, plan(43, &NemesisKind::ALL, d, 3, 3));
        assert!(a.len() >= 6, "{}", a.len());
        for w in a.windows(2) {
            assert!(w[0].at + w[0].window < w[1].at, "faults overlap");
        }
        let last = a.last().unwrap();
        assert!(last.at + last.window + COOLDOWN <= d);
        assert!(plan(1, &[], d, 3, 3).is_empty());
        // 90 s holds a full round: every nemesis appears.
        for seed in 0..20 {
            let p = plan(seed, &NemesisKind::ALL, Duration::from_secs(90), 3, 3);
            for k in NemesisKind::ALL {
                assert!(p.iter().any(|s| s.kind == k), "seed {seed} lacks {k:?}");
            }
        }
    }
}
