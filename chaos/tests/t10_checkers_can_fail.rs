//! The checkers can fail: a deliberately broken head (test-only `XNAI_CHAOS_BUG=ack-before-commit`:
//! it acknowledges a submission before its Raft commit) under leader kills must make
//! `xnai-chaos` exit 1 and report lost acknowledged writes, each with a witness.
//! Needs the workspace binaries (`cargo build --workspace --bins`), as the other
//! multi-process tests do.

use std::path::PathBuf;
use std::process::Command;

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XNAI_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_xnai-chaos"));
    let dir = exe.parent().expect("binary dir").to_path_buf();
    assert!(
        dir.join("xnai-head").exists() && dir.join("xnai-worker").exists(),
        "xnai-head / xnai-worker not in {}: run `cargo build --workspace --bins` first",
        dir.display()
    );
    dir
}

#[test]
fn ack_before_commit_is_caught_with_a_witness() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let report = out_dir.path().join("report.json");
    tracing::info!("--- run the harness against a head that acks before commit");
    let out = Command::new(env!("CARGO_BIN_EXE_xnai-chaos"))
        .args([
            "run",
            "--target",
            "local",
            "--nemesis",
            "leader-kill",
            "--seed",
            "11",
            "--duration",
            "25s",
            "--clients",
            "3",
            "--inject-bug",
            "ack-before-commit",
        ])
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--report")
        .arg(&report)
        .output()
        .expect("running xnai-chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "xnai-chaos must exit 1 on violations\nstdout:\n{stdout}\nstderr tail:\n{}",
        stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    tracing::info!("--- the report names lost acknowledged writes, each with a witness");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written"))
            .expect("report is JSON");
    let violations = r["violations"].as_array().expect("violations");
    let lost: Vec<_> = violations
        .iter()
        .filter(|v| v["checker"] == "acked-not-lost")
        .collect();
    assert!(
        !lost.is_empty(),
        "no lost acknowledged write reported:\n{stdout}"
    );
    for v in &lost {
        let w = v["witness"].as_array().expect("witness");
        assert!(
            w.iter()
                .any(|o| o["outcome"] == "ok" && o["value"]["type"] == "submit"),
            "the witness shows the acknowledgement: {v}"
        );
    }
    assert!(stdout.contains("VIOLATIONS"), "{stdout}");
    assert!(report.with_extension("svg").exists(), "the plot is written");
}
