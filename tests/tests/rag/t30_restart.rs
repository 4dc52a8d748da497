//! The index survives its worker: a retrieval actor (`--max-restarts 1`) on worker A (the
//! embedder runs elsewhere) is filled, A is killed, and the actor restarted on B reloads its
//! index from the cluster's objects
//! (snapshot + log, replicated on two workers): it embedded nothing on reload and answers the
//! same searches identically in every mode.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use xnai_sdk::{ActorOptions, Resources, SearchMode};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster, wait_until};

use super::{create_embedder, write_corpus};

fn pool(name: &str) -> Resources {
    let mut r = Resources::default();
    r.labels.insert("pool".into(), name.into());
    r
}

#[test]
fn t30_restarted_actor_reloads_without_reembedding() -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new()?;
    tracing::info!("--- phase: embedder on the first worker, then retrieval actor on A");
    let mut c = start_cluster(ClusterOptions {
        workers: 1,
        ..Default::default()
    })?;
    create_embedder(&c, "emb")?;
    let a = c.add_worker(&["--labels", "pool=r"])?;
    let client = rt.block_on(c.client())?;
    let opts = ActorOptions {
        name: Some("docs".into()),
        max_restarts: 1,
        resources: Some(pool("r")),
        ..Default::default()
    };
    let words = ["embedder=emb", "chunk=60", "overlap=10"]
        .map(xnai_sdk::Arg::from)
        .to_vec();
    rt.block_on(client.create_actor("retrieval", words, opts))?;

    tracing::info!("--- phase: add documents in several calls (snapshots and a log)");
    let corpus = tempfile::tempdir()?;
    write_corpus(corpus.path())?;
    for name in [
        "raft.md",
        "bread.txt",
        "volcano.md",
        "notes/vault.txt",
        "notes/football.md",
    ] {
        let path = corpus.path().join(name).display().to_string();
        c.xnai_ok(&["index", "add", "--actor", "docs", &path])?;
    }
    let queries = [
        ("who is elected leader", SearchMode::Vector),
        ("sourdough starter", SearchMode::Bm25),
        ("eruption of lava", SearchMode::Hybrid),
    ];
    let search_all = |client: &xnai_sdk::Client| {
        rt.block_on(async {
            let docs = client.get_actor("docs").await?;
            let mut out = Vec::new();
            for (q, mode) in queries {
                out.push(client.search(&docs, q, 5, mode).await?);
            }
            anyhow::Ok(out)
        })
    };
    let before = search_all(&client)?;
    let list = c.xnai_ok(&["actor", "list", "--json"])?;
    assert!(list.contains(&a), "docs runs on A: {list}");

    tracing::info!("--- phase: B joins the pool; kill -9 A");
    let b = c.add_worker(&["--labels", "pool=r"])?;
    let row = c.status()?["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["address"] == a.as_str()).cloned())
        .ok_or_else(|| anyhow::anyhow!("no row for A"))?;
    let pid = row["pid"].as_i64().unwrap_or(0) as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL)?;
    wait_until(Duration::from_secs(30), "docs restarted on B", || {
        let list: serde_json::Value =
            serde_json::from_str(&c.xnai_ok(&["actor", "list", "--json"])?)?;
        let docs = list["actors"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["name"] == "docs").cloned())
            .unwrap_or_default();
        Ok(docs["address"] == b.as_str()
            && docs["state"].to_string().to_lowercase().contains("alive"))
    })?;

    tracing::info!("--- phase: reloaded without embedding; same answers in every mode");
    let stats: serde_json::Value =
        serde_json::from_str(&c.xnai_ok(&["index", "stats", "--actor", "docs"])?)?;
    assert_eq!(stats["texts_embedded"], 0, "{stats}");
    assert_eq!(stats["documents"], 5, "{stats}");
    assert_eq!(stats["loaded_snapshot"], 4, "{stats}");
    assert_eq!(stats["loaded_logs"], 0, "{stats}");
    let after = search_all(&client)?;
    assert_eq!(before, after);
    Ok(())
}
