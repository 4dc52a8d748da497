//! Tasks end to end: `run`, `task submit`, object references, a chain that crosses workers,
//! and clear failures for unknown functions and arguments of the wrong shape.

use xnai_tests::{ClusterOptions, init_tracing, sha256_hex, start_cluster};

#[test]
fn t10_echo_fill_digest_and_chain_across_workers() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: start a 1-head, 2-worker cluster");
    let mut c = start_cluster(ClusterOptions::default())?;

    tracing::info!("--- phase: xnai run echo hello");
    assert_eq!(c.xnai_ok(&["run", "echo", "hello"])?, "hello");
    assert_eq!(c.xnai_ok(&["run", "echo", "a", "b", "c"])?, "a b c");

    tracing::info!("--- phase: fill 50 MB, digest by reference, compare with the bytes we read");
    let id = c.xnai_ok(&["task", "submit", "fill", "50000000", "7"])?;
    assert_eq!(
        id.len(),
        32,
        "task submit prints a 32-hex object id, got {id:?}"
    );
    let digest = c.xnai_ok(&["run", "digest", &format!("@{id}")])?;
    let file = c.data_dir.path().join("fill.bin");
    c.xnai_ok(&["object", "get", &id, "-o", file.to_str().unwrap()])?;
    let bytes = std::fs::read(&file)?;
    assert_eq!(bytes.len(), 50_000_000);
    assert_eq!(digest, sha256_hex(&bytes));
    assert_eq!(
        bytes,
        xnai_sdk::builtins::fill_bytes(50_000_000, 7),
        "fill is deterministic"
    );

    tracing::info!(
        "--- phase: a chain that must cross workers (digest pinned to a labelled worker)"
    );
    // The fill finishes before the labelled worker joins, so it cannot run there and the
    // digest must pull its input across.
    let small = c.xnai_ok(&["task", "submit", "fill", "3000000", "11"])?;
    let client_rt = tokio::runtime::Runtime::new()?;
    client_rt.block_on(async {
        let client = c.client().await?;
        let r = xnai_sdk::ObjectRef::parse(&small)?;
        client.get(&r, std::time::Duration::from_secs(60)).await?;
        anyhow::Ok(())
    })?;
    c.add_worker(&["--labels", "zone=b"])?;
    let remote_digest = client_rt.block_on(async {
        let client = c.client().await?;
        let mut resources = xnai_sdk::Resources {
            cpus: 1.0,
            ..Default::default()
        };
        resources.labels.insert("zone".into(), "b".into());
        let opts = xnai_sdk::TaskOptions {
            resources: Some(resources),
            ..Default::default()
        };
        let r = client
            .submit(
                "digest",
                vec![xnai_sdk::Arg::Ref(xnai_sdk::ObjectRef::parse(&small)?)],
                opts,
            )
            .await?;
        let out = client.get(&r, std::time::Duration::from_secs(60)).await?;
        anyhow::Ok(String::from_utf8(out.to_vec())?)
    })?;
    assert_eq!(
        remote_digest,
        sha256_hex(&xnai_sdk::builtins::fill_bytes(3_000_000, 11))
    );
    // The pulled copy is reported to the head on its own, shortly after the digest's result.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let info: serde_json::Value =
            serde_json::from_str(&c.xnai_ok(&["object", "info", &small, "--json"])?)?;
        let locations = info["locations"].as_array().map(|l| l.len()).unwrap_or(0);
        if locations >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the labelled worker pulled a copy: {info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    tracing::info!("--- phase: clear errors, cluster keeps serving");
    let err = c.xnai_err(&["run", "no_such_function"])?;
    assert!(err.contains("unknown function"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let err = c.xnai_err(&["run", "fill", "abc", "1"])?;
    assert!(err.contains("BYTES"), "{err}");
    let err = c.xnai_err(&["run", "digest", "@not-an-id"])?;
    assert!(err.contains("malformed object id"), "{err}");
    let err = c.xnai_err(&["run", "digest", "@00000000000000000000000000000042"])?;
    assert!(err.contains("no object"), "{err}");
    assert_eq!(c.xnai_ok(&["run", "echo", "still", "here"])?, "still here");
    Ok(())
}
