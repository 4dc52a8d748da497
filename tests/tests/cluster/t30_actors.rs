//! Actors end to end: a named `counter` answers 1, 2, 3; list, kill, and clear errors for
//! unknown classes, unknown methods, taken names and killed actors.

use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

#[test]
fn t30_counter_actor_lifecycle() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: start cluster, create counter c1");
    let c = start_cluster(ClusterOptions::default())?;
    let id = c.xnai_ok(&["actor", "create", "counter", "--name", "c1"])?;
    assert_eq!(id.len(), 32, "{id}");

    tracing::info!("--- phase: three incr calls answer 1, 2, 3");
    for want in ["1", "2", "3"] {
        assert_eq!(c.xnai_ok(&["actor", "call", "c1", "incr"])?, want);
    }
    assert_eq!(c.xnai_ok(&["actor", "call", "c1", "incr", "10"])?, "13");
    assert_eq!(c.xnai_ok(&["actor", "call", "c1", "get"])?, "13");

    tracing::info!("--- phase: constructor argument and list");
    c.xnai_ok(&["actor", "create", "counter", "--name", "c2", "--", "100"])?;
    assert_eq!(c.xnai_ok(&["actor", "call", "c2", "incr"])?, "101");
    let list: serde_json::Value = serde_json::from_str(&c.xnai_ok(&["actor", "list", "--json"])?)?;
    let text = list.to_string();
    assert!(
        text.contains("c1") && text.contains("c2") && text.contains(&id),
        "{text}"
    );

    tracing::info!("--- phase: clear errors");
    let err = c.xnai_err(&["actor", "create", "counter", "--name", "c1"])?;
    assert!(err.contains("c1") && err.contains("exists"), "{err}");
    let err = c.xnai_err(&["actor", "create", "no_such_class"])?;
    assert!(err.contains("unknown"), "{err}");
    let err = c.xnai_err(&["actor", "call", "c1", "frobnicate"])?;
    assert!(err.contains("frobnicate"), "{err}");
    let err = c.xnai_err(&["actor", "call", "c1", "incr", "many"])?;
    assert_eq!(err.lines().count(), 1, "{err}");

    tracing::info!("--- phase: kill frees the name");
    c.xnai_ok(&["actor", "kill", "c1"])?;
    let err = c.xnai_err(&["actor", "call", "c1", "get"])?;
    assert!(!err.is_empty());
    c.xnai_ok(&["actor", "create", "counter", "--name", "c1"])?;
    assert_eq!(c.xnai_ok(&["actor", "call", "c1", "incr"])?, "1");
    assert_eq!(c.xnai_ok(&["actor", "call", "c2", "get"])?, "101");
    Ok(())
}
