//! The simulation's runs: hundreds of seeds per CI run over 3 and 5 heads (split over a few
//! tests so nextest spreads them over the cores), one seed replayed from `XNAI_SIM_SEED`, and
//! the self-test: with the deliberate ack-before-commit bug switched on, some seed must fail.

use std::ops::Range;
use std::time::Instant;

use super::run_seed;
use crate::raft::hooks::Bug;

/// Seeds each CI run covers in total (`XNAI_SIM_SEEDS` overrides).
const DEFAULT_SEEDS: u64 = 500;

/// Total seeds for this run.
fn total_seeds() -> u64 {
    std::env::var("XNAI_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEEDS)
}

/// The part `part` of `parts` of the seed space, for `n` heads. With `XNAI_SIM_SEED=N` only
/// that seed runs (in every part whose head count matches `XNAI_SIM_HEADS`, default 3).
fn seeds(n: u64, part: u64, parts: u64, share: f64) -> Range<u64> {
    if let Some(seed) = std::env::var("XNAI_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let heads = std::env::var("XNAI_SIM_HEADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        return if part == 0 && heads == n {
            seed..seed + 1
        } else {
            0..0
        };
    }
    let mine = ((total_seeds() as f64 * share).ceil() as u64).div_ceil(parts);
    let base = n * 1_000_000 + part * mine;
    base..base + mine
}

/// Log to the test's output when `RUST_LOG` asks for it (replaying one seed).
fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Run `seeds` with `n` heads; panic naming the first failing seed.
fn run_seeds(n: u64, seeds: Range<u64>) {
    init_logs();
    let started = Instant::now();
    let (mut acked, mut terms, mut snapshots, mut delivered, mut dropped) = (0, 0, 0, 0, 0);
    let count = seeds.end - seeds.start;
    if count == 0 {
        return;
    }
    for seed in seeds {
        let r = run_seed(seed, n, None);
        assert!(
            r.violations.is_empty(),
            "simulation seed {seed} with {n} heads failed: {:#?}\n\
             replay: XNAI_SIM_SEED={seed} XNAI_SIM_HEADS={n} cargo nextest run -p xnai-head sim",
            r.violations
        );
        acked += r.acked;
        terms += r.terms;
        snapshots += r.snapshots;
        delivered += r.net.delivered;
        dropped += r.net.dropped;
    }
    println!(
        "{count} seeds with {n} heads passed in {:.1}s: {acked} acknowledged proposals, \
         {terms} leader terms, {snapshots} snapshots installed, {delivered} message batches delivered, {dropped} lost",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn sim_three_heads_part_1() {
    run_seeds(3, seeds(3, 0, 2, 0.7));
}

#[test]
fn sim_three_heads_part_2() {
    run_seeds(3, seeds(3, 1, 2, 0.7));
}

#[test]
fn sim_five_heads() {
    run_seeds(5, seeds(5, 0, 1, 0.3));
}

#[test]
fn sim_catches_an_ack_before_commit_bug() {
    tracing::info!("--- the same simulation, with heads that acknowledge before commit");
    for seed in 0..200 {
        let r = run_seed(seed, 3, Some(Bug::AckBeforeCommit));
        if r.violations.iter().any(|v| v.contains("never applied")) {
            println!("seed {seed} caught the bug: {:?}", r.violations);
            return;
        }
    }
    panic!("no seed out of 200 caught a head that acknowledges before commit");
}
