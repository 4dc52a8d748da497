//! The checkers can fail: a deliberately broken head (`XNAI_CHAOS_BUG=ack-before-commit`: it
//! acknowledges a submission before its Raft commit) under leader kills must make `xnai-chaos`
//! exit 1 and report lost acknowledged writes, each with a witness. The bug is compiled only
//! into `xnai-head-chaos-bug` (head feature `chaos-bug`), which this test builds itself; the
//! workers come from `cargo build --workspace --bins`, as for the other multi-process tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `cargo build --workspace --bins` put the binaries (or `XNAI_BIN_DIR`).
fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XNAI_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_xnai-chaos"));
    let dir = exe.parent().expect("binary dir").to_path_buf();
    assert!(
        dir.join("xnai-worker").exists(),
        "xnai-worker not in {}: run `cargo build --workspace --bins` first",
        dir.display()
    );
    dir
}

/// Build the head with the bug compiled in, beside the other binaries. Only this binary
/// target is built: building every head binary with the feature would replace `xnai-head`.
fn build_buggy_head() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut build = Command::new(cargo);
    build.current_dir(&workspace).args([
        "build",
        "-p",
        "xnai-head",
        "--features",
        "chaos-bug",
        "--bin",
        "xnai-head-chaos-bug",
    ]);
    // Into the same target directory as the test binary (only the head crate recompiles).
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_xnai-chaos"));
    if let Some(target) = exe.parent().and_then(Path::parent) {
        build.arg("--target-dir").arg(target);
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "building xnai-head-chaos-bug failed");
    let buggy = exe
        .parent()
        .expect("binary dir")
        .join("xnai-head-chaos-bug");
    assert!(buggy.is_file(), "{} not built", buggy.display());
    buggy
}

/// A bin dir for the harness: the buggy head as `xnai-head`, the usual worker.
fn buggy_bin_dir(out: &Path) -> PathBuf {
    let bins = bin_dir();
    let head = build_buggy_head();
    let dir = out.join("bin");
    std::fs::create_dir_all(&dir).expect("bin dir");
    std::os::unix::fs::symlink(&head, dir.join("xnai-head")).expect("link head");
    std::os::unix::fs::symlink(bins.join("xnai-worker"), dir.join("xnai-worker"))
        .expect("link worker");
    dir
}

#[test]
fn ack_before_commit_is_caught_with_a_witness() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let report = out_dir.path().join("report.json");
    tracing::info!("--- build the head with the bug compiled in");
    let bins = buggy_bin_dir(out_dir.path());
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
        .arg(&bins)
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
