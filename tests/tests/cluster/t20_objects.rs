//! Objects end to end: a 64 MiB put/get byte for byte, object info, a put larger than the
//! arena refused with a one-line reason while the cluster keeps serving.

use xnai_tests::{ClusterOptions, init_tracing, start_cluster_with_env};

#[test]
fn t20_put_get_64mib_and_refuse_oversized_put() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: cluster with 96 MiB arenas and no spill directories");
    let c = start_cluster_with_env(
        ClusterOptions {
            arena_bytes: "96MiB".into(),
            ..Default::default()
        },
        &[("XNAI_SPILL_BYTES", "0")],
    )?;

    tracing::info!("--- phase: put then get a 64 MiB file");
    let src = c.data_dir.path().join("in.bin");
    let data = xnai_sdk::builtins::fill_bytes(64 << 20, 99);
    std::fs::write(&src, &data)?;
    let id = c.xnai_ok(&["object", "put", src.to_str().unwrap()])?;
    assert_eq!(id.len(), 32, "{id}");
    let dst = c.data_dir.path().join("out.bin");
    c.xnai_ok(&["object", "get", &id, "-o", dst.to_str().unwrap()])?;
    assert!(
        std::fs::read(&dst)? == data,
        "64 MiB object came back byte for byte"
    );

    tracing::info!("--- phase: object info");
    let info: serde_json::Value =
        serde_json::from_str(&c.xnai_ok(&["object", "info", &id, "--json"])?)?;
    assert_eq!(info["size"], 64 << 20, "{info}");
    assert_eq!(info["state"], "ready", "{info}");

    tracing::info!("--- phase: a put larger than any arena fails with one line");
    let big = c.data_dir.path().join("big.bin");
    std::fs::File::create(&big)?.set_len(200 << 20)?;
    let err = c.xnai_err(&["object", "put", big.to_str().unwrap()])?;
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("does not fit") || err.contains("arena full"),
        "{err}"
    );

    tracing::info!(
        "--- phase: a put that fits nowhere after the 64 MiB one is refused, not crashed"
    );
    let mid = c.data_dir.path().join("mid.bin");
    std::fs::File::create(&mid)?.set_len(90 << 20)?;
    let first = c.xnai(&["object", "put", mid.to_str().unwrap()])?;
    let second = c.xnai(&["object", "put", mid.to_str().unwrap()])?;
    let third = c.xnai(&["object", "put", mid.to_str().unwrap()])?;
    let ok = [&first, &second, &third]
        .iter()
        .filter(|o| o.status.success())
        .count();
    assert!(
        ok <= 2,
        "two 96 MiB arenas hold at most two more 90 MiB objects"
    );
    for o in [&first, &second, &third] {
        if !o.status.success() {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(
                e.contains("arena full") || e.contains("does not fit"),
                "{e}"
            );
        }
    }

    tracing::info!("--- phase: the cluster keeps serving and the first object is intact");
    assert_eq!(c.xnai_ok(&["run", "echo", "ok"])?, "ok");
    c.xnai_ok(&["object", "get", &id, "-o", dst.to_str().unwrap()])?;
    assert!(std::fs::read(&dst)? == data);

    tracing::info!("--- phase: missing and malformed ids");
    let err = c.xnai_err(&["object", "get", "0000000000000000000000000000abcd"])?;
    assert!(err.contains("no object"), "{err}");
    let err = c.xnai_err(&["object", "info", "xyz"])?;
    assert!(err.contains("malformed object id"), "{err}");
    Ok(())
}
