//! The human summary printed on stdout: operations by kind and outcome, the faults with their
//! recovery times, each checker's verdict, and every violation with its witness.

use std::fmt::Write;

use super::Report;
use crate::history::Op;

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v}"))
}

fn op_line(o: &Op) -> String {
    format!(
        "      #{} p{} {}..{} ms {:?} {} {}{}",
        o.index,
        o.process,
        o.invoke_ms,
        o.complete_ms,
        o.outcome,
        o.key,
        serde_json::to_string(&o.value).unwrap_or_default(),
        o.error
            .as_ref()
            .map(|e| format!(" error: {e}"))
            .unwrap_or_default()
    )
}

/// The table as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "xnai-chaos: target {:?}, seed {}, nemeses [{}], {:.0} s",
        r.config.target,
        r.config.seed,
        r.config
            .nemeses
            .iter()
            .map(|n| n.name())
            .collect::<Vec<_>>()
            .join(","),
        r.duration_s
    );
    let _ = writeln!(
        s,
        "\n{:<18} {:>7} {:>7} {:>8}",
        "operation", "ok", "fail", "unknown"
    );
    for (k, c) in &r.ops_by_kind {
        let _ = writeln!(s, "{k:<18} {:>7} {:>7} {:>8}", c.ok, c.fail, c.unknown);
    }
    let _ = writeln!(
        s,
        "{:<18} {:>7} {:>7} {:>8}",
        "total", r.ops.ok, r.ops.fail, r.ops.unknown
    );
    let _ = writeln!(
        s,
        "\n{:<13} {:<10} {:>9} {:>9} {:>12} {:>13} {:>13}  note",
        "fault", "target", "start ms", "end ms", "recover(inj)", "write(inj)", "recover(heal)"
    );
    for f in &r.faults {
        let _ = writeln!(
            s,
            "{:<13} {:<10} {:>9} {:>9} {:>12} {:>13} {:>13}  {}",
            f.fault.nemesis,
            f.fault.target,
            f.fault.start_ms,
            f.fault.end_ms,
            ms(f.after_fault_ms),
            ms(f.after_fault_write_ms),
            ms(f.after_heal_ms),
            f.fault.note
        );
    }
    let _ = writeln!(s, "\n{:<26} {:>10}  summary", "checker", "violations");
    for c in &r.checks {
        let _ = writeln!(
            s,
            "{:<26} {:>10}  {}",
            c.checker,
            c.violations.len(),
            c.summary
        );
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(
            s,
            "\nWARNINGS (not violations; --strict makes them so): {}",
            r.warnings.len()
        );
        for v in r.warnings.iter().take(5) {
            let _ = writeln!(s, "  [{}] {}", v.checker, v.message);
            for o in &v.witness {
                let _ = writeln!(s, "{}", op_line(o));
            }
        }
    }
    if r.violations.is_empty() {
        let _ = writeln!(s, "\nOK: no violations");
    } else {
        let _ = writeln!(s, "\nVIOLATIONS: {}", r.violations.len());
        for v in r.violations.iter().take(20) {
            let _ = writeln!(s, "  [{}] {}", v.checker, v.message);
            for o in &v.witness {
                let _ = writeln!(s, "{}", op_line(o));
            }
        }
    }
    s
}
