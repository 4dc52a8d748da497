//! `xnai index add` a directory (5 documents, 3 files skipped with reasons) into a retrieval
//! actor embedding through an inference actor (MiniLM), then `xnai search` finds the right
//! document in each mode: `vector` from a paraphrase that shares no keyword, `bm25` from a rare
//! keyword, `hybrid` from a mixed query.

use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

use super::{create_embedder, create_retrieval, doc_id, write_corpus};

fn top_doc(out: &str) -> anyhow::Result<String> {
    let hits: serde_json::Value = serde_json::from_str(out)?;
    Ok(hits[0]["doc_id"].as_str().unwrap_or_default().to_string())
}

#[test]
fn t20_index_add_and_search_each_mode() -> anyhow::Result<()> {
    init_tracing();
    tracing::info!("--- phase: cluster, embedder and retrieval actor");
    let c = start_cluster(ClusterOptions::default())?;
    create_embedder(&c, "emb")?;
    create_retrieval(&c, "docs", "emb", &["chunk=60", "overlap=10"])?;

    tracing::info!("--- phase: index add a directory: 5 added, 3 skipped with reasons");
    let corpus = tempfile::tempdir()?;
    write_corpus(corpus.path())?;
    let dir = corpus.path().display().to_string();
    let out = c.xnai_ok(&["index", "add", "--actor", "docs", &dir])?;
    assert!(out.contains("added 5 documents"), "{out}");
    assert!(out.contains("skipped 3"), "{out}");
    assert!(
        out.contains("report.pdf: not text or markdown (.pdf)"),
        "{out}"
    );
    assert!(out.contains("blob.txt: not UTF-8 text"), "{out}");
    assert!(out.contains("empty.md: empty"), "{out}");
    let stats: serde_json::Value =
        serde_json::from_str(&c.xnai_ok(&["index", "stats", "--actor", "docs"])?)?;
    assert_eq!(stats["documents"], 5, "{stats}");

    tracing::info!("--- phase: each mode finds the right document");
    let p = corpus.path();
    let cases = [
        ("vector", "how do I make a loaf at home", "bread.txt"),
        ("bm25", "pyroclastic", "volcano.md"),
        (
            "hybrid",
            "which server becomes leader after a vote",
            "raft.md",
        ),
        (
            "vector",
            "a soccer game with a penalty kick",
            "notes/football.md",
        ),
    ];
    for (mode, query, want) in cases {
        let out = c.xnai_ok(&[
            "search", "--actor", "docs", "--mode", mode, "--k", "3", "--json", query,
        ])?;
        assert_eq!(top_doc(&out)?, doc_id(p, want), "{mode} {query:?}: {out}");
    }
    tracing::info!("--- phase: index add --in-actor (the actor embeds) adds one more file");
    let tea = p.join("tea.md");
    std::fs::write(
        &tea,
        "Green tea leaves are steamed and rolled right after picking.",
    )?;
    let out = c.xnai_ok(&[
        "index",
        "add",
        "--actor",
        "docs",
        "--in-actor",
        &tea.display().to_string(),
    ])?;
    assert!(out.contains("added 1 documents"), "{out}");
    let out = c.xnai_ok(&[
        "search",
        "--actor",
        "docs",
        "--mode",
        "bm25",
        "--json",
        "steamed leaves",
    ])?;
    assert_eq!(top_doc(&out)?, tea.display().to_string(), "{out}");
    let text = c.xnai_ok(&["search", "--actor", "docs", "magma", "lava"])?;
    assert!(text.contains("volcano.md"), "{text}");
    let err = c.xnai_err(&["search", "--actor", "docs", "--mode", "fuzzy", "x"])?;
    assert!(err.contains("modes: vector, bm25, hybrid"), "{err}");
    Ok(())
}
