//! A `counter` with `--max-restarts 2` on worker A: kill A, and the next call succeeds on
//! another worker (the SDK waits for the restart); a third death is one too many.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use xnai_tests::{cluster_with_labelled_worker, init_tracing, wait_until};

use super::util::{kill9_and_wait_closed, pid_of, signal, worker};

#[test]
fn t20_counter_restarts_elsewhere_after_kill() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    tracing::info!("--- phase: counter c on worker A (pool=x)");
    let (mut c, a) = cluster_with_labelled_worker("pool=x")?;
    let client = rt.block_on(c.client())?;
    let mut resources = xnai_sdk::Resources::default();
    resources.labels.insert("pool".into(), "x".into());
    let opts = xnai_sdk::ActorOptions {
        name: Some("c".into()),
        max_restarts: 2,
        resources: Some(resources),
        ..Default::default()
    };
    rt.block_on(client.create_actor("counter", vec![], opts))?;
    assert_eq!(c.xnai_ok(&["actor", "call", "c", "incr"])?, "1");
    let list = c.xnai_ok(&["actor", "list", "--json"])?;
    assert!(list.contains(&a), "c runs on A: {list}");

    tracing::info!("--- phase: worker B joins the pool; kill -9 A; the next call succeeds");
    let b = c.add_worker(&["--labels", "pool=x"])?;
    let killed = Instant::now();
    kill9_and_wait_closed(&c, &a)?;
    // A restarted actor starts from its constructor: the count begins again.
    assert_eq!(c.xnai_ok(&["actor", "call", "c", "incr"])?, "1");
    tracing::info!(elapsed = ?killed.elapsed(), "first call after the kill answered");
    let list = c.xnai_ok(&["actor", "list", "--json"])?;
    assert!(list.contains(&b), "c now runs on B: {list}");

    tracing::info!("--- phase: restarts run out");
    let c2 = c.add_worker(&["--labels", "pool=x"])?;
    kill9_and_wait_closed(&c, &b)?;
    assert_eq!(c.xnai_ok(&["actor", "call", "c", "incr"])?, "1");
    signal(pid_of(&worker(&c, &c2)?)?, Signal::SIGKILL)?;
    wait_until(Duration::from_secs(15), "c dead for good", || {
        let list = c.xnai_ok(&["actor", "list", "--json"])?;
        Ok(list.contains("\"dead\"") || list.contains("DEAD") || list.contains("Dead"))
    })?;
    let err = c.xnai_err(&["actor", "call", "c", "get"])?;
    assert!(err.contains("died") || err.contains("dead"), "{err}");
    Ok(())
}
