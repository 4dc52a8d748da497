//! The run's report: a JSON document (configuration, schedule, operations by kind and outcome,
//! the fault timeline, every checker's summary and violations with witnesses, recovery times,
//! throughput per second), a human table on stdout ([`table`]) and an SVG plot ([`svg`]).

pub mod svg;
pub mod table;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::checkers::recovery::{Recovery, recoveries};
use crate::checkers::{CheckResult, Violation};
use crate::config::RunConfig;
use crate::error::{ChaosError, Result};
use crate::history::{History, Op, OpValue, Outcome};
use crate::schedule::Step;

/// One second of the run: operations completed ok and not ok.
#[derive(Clone, Debug, Serialize)]
pub struct Second {
    /// Second since the start.
    pub t: u64,
    /// Acknowledged operations completed in it.
    pub ok: u64,
    /// Failed or indeterminate operations completed in it.
    pub not_ok: u64,
}

/// Counts by outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Acknowledged.
    pub ok: u64,
    /// Definitely failed.
    pub fail: u64,
    /// Indeterminate.
    pub unknown: u64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What was run.
    pub config: RunConfig,
    /// The fault schedule the seed produced.
    pub schedule: Vec<Step>,
    /// Wall time of the run (workload + faults), seconds.
    pub duration_s: f64,
    /// Operations by outcome.
    pub ops: Counts,
    /// Operations by kind, then outcome.
    pub ops_by_kind: BTreeMap<String, Counts>,
    /// Faults as they happened, with recovery times.
    pub faults: Vec<Recovery>,
    /// Every checker's result.
    pub checks: Vec<CheckResult>,
    /// All violations (also inside `checks`).
    pub violations: Vec<Violation>,
    /// Findings that are not violations unless the run is `--strict` (acknowledged tasks whose
    /// retry budget ran out: failed and reported, not silently lost; a linearizability search
    /// that ran out of budget: nothing claimed either way). Empty under `--strict`: they are
    /// in `violations` then.
    pub warnings: Vec<Violation>,
    /// Throughput per second.
    pub throughput: Vec<Second>,
    /// The local run directory kept for inspection (logs), if any.
    pub kept_dir: Option<String>,
    /// The full history (ops, faults, breaker transitions).
    pub history: History,
}

/// The kind of an op, for counting.
pub fn kind(op: &Op) -> String {
    op.kind()
}

fn add(c: &mut Counts, o: Outcome) {
    match o {
        Outcome::Ok => c.ok += 1,
        Outcome::Fail => c.fail += 1,
        Outcome::Unknown => c.unknown += 1,
    }
}

impl Report {
    /// Assemble the report from a finished run.
    pub fn build(
        config: RunConfig,
        schedule: Vec<Step>,
        duration_s: f64,
        history: History,
        checks: Vec<CheckResult>,
        extra: Vec<Violation>,
    ) -> Self {
        let mut ops = Counts::default();
        let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
        for op in &history.ops {
            add(&mut ops, op.outcome);
            add(by_kind.entry(kind(op)).or_default(), op.outcome);
        }
        let secs = duration_s.ceil() as u64;
        let mut throughput: Vec<Second> = (0..=secs)
            .map(|t| Second {
                t,
                ok: 0,
                not_ok: 0,
            })
            .collect();
        for op in history.ops.iter().filter(|o| {
            !matches!(
                o.value,
                OpValue::Read {
                    final_check: true,
                    ..
                }
            )
        }) {
            if let Some(s) = throughput.get_mut((op.complete_ms / 1000) as usize) {
                if op.outcome == Outcome::Ok {
                    s.ok += 1;
                } else {
                    s.not_ok += 1;
                }
            }
        }
        let mut violations: Vec<Violation> =
            checks.iter().flat_map(|c| c.violations.clone()).collect();
        violations.extend(extra);
        let warnings: Vec<Violation> = checks.iter().flat_map(|c| c.warnings.clone()).collect();
        let warnings = if config.strict {
            violations.extend(warnings);
            vec![]
        } else {
            warnings
        };
        Self {
            config,
            schedule,
            duration_s,
            ops,
            ops_by_kind: by_kind,
            faults: recoveries(&history),
            checks,
            violations,
            warnings,
            throughput,
            kept_dir: None,
            history,
        }
    }

    /// Write the JSON to `path` and the SVG beside it (`.svg`).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ChaosError::io(format!("creating {}", dir.display()), e))?;
        }
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| ChaosError::Config(format!("serialising the report: {e}")))?;
        std::fs::write(path, json)
            .map_err(|e| ChaosError::io(format!("writing {}", path.display()), e))?;
        let svg_path = path.with_extension("svg");
        std::fs::write(&svg_path, svg::render(self))
            .map_err(|e| ChaosError::io(format!("writing {}", svg_path.display()), e))?;
        Ok(())
    }
}
