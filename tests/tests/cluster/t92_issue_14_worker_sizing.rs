//! Issue 14: `xnai up` divides the host among its workers instead of letting each offer every
//! core and all the memory; `--worker-cpus` / `--worker-memory` (here through their
//! environment variables) set the share, `xnai status` and `DIR/cluster.json` show it, and a
//! share that makes no sense is refused before anything starts.

use xnai_tests::{ClusterOptions, bin_dir, init_tracing, start_cluster, start_cluster_with_env};

/// (CPUs, memory bytes) each worker offers, from `xnai status --json`.
fn offers(st: &serde_json::Value) -> Vec<(f64, u64)> {
    st["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|w| {
            (
                w["total"]["cpus"].as_f64().unwrap_or(-1.0),
                w["total"]["memory_bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// MemTotal (what is available moves with the other processes on the host; the total does not).
fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(u64::MAX, |kb| kb * 1024)
}

#[test]
fn t92_up_divides_the_host_among_its_workers() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: default division, two workers");
    let cores = std::thread::available_parallelism()?.get() as f64;
    let total = mem_total();
    let c = start_cluster(ClusterOptions::default())?;
    let st = c.status()?;
    let got = offers(&st);
    assert_eq!(got.len(), 2, "{st}");
    let want_cpus = (cores / 2.0).floor().max(1.0);
    for (cpus, memory) in &got {
        assert_eq!(
            *cpus, want_cpus,
            "each worker offers its share of {cores} cores: {st}"
        );
        assert!(*memory > 0, "{st}");
        // Two arenas of 256 MiB and a head's reserve come off what is available, then it is
        // halved: never more than half the host (each used to offer all of it).
        assert!(
            *memory <= total / 2,
            "a worker offers at most half of the host's {total} bytes: {st}"
        );
    }
    assert_eq!(got[0].1, got[1].1, "an even share: {st}");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        c.data_dir.path().join("cluster.json"),
    )?)?;
    for w in file["workers"].as_array().cloned().unwrap_or_default() {
        assert_eq!(w["cpus"].as_f64(), Some(want_cpus), "{file}");
        assert_eq!(w["memory_bytes"].as_u64(), Some(got[0].1), "{file}");
    }
    let human = c.xnai_ok(&["status"])?;
    assert!(human.contains("CPUS FREE/OFFERED"), "{human}");
    drop(c);

    tracing::info!("--- phase: the flags set the share");
    let c = start_cluster_with_env(
        ClusterOptions {
            workers: 1,
            ..Default::default()
        },
        &[("XNAI_WORKER_CPUS", "3"), ("XNAI_WORKER_MEMORY", "512MiB")],
    )?;
    let st = c.status()?;
    assert_eq!(offers(&st), vec![(3.0, 512 << 20)], "{st}");
    drop(c);

    tracing::info!("--- phase: a share that makes no sense is refused");
    let dir = tempfile::tempdir()?;
    for (flag, value, says) in [
        (
            "--worker-cpus",
            "0",
            "--worker-cpus must be a positive number",
        ),
        (
            "--worker-memory",
            "0",
            "--worker-memory must be more than 0",
        ),
    ] {
        let out = std::process::Command::new(bin_dir()?.join("xnai"))
            .args(["up", "--workers", "1", "--detach", flag, value])
            .arg("--data-dir")
            .arg(dir.path())
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(
            !dir.path().join("cluster.json").exists(),
            "nothing was started"
        );
    }
    Ok(())
}
