//! `xnai-rag-bench`: retrieval on a labelled set no one here wrote, Debian package descriptions
//! (the short description is the query, the long description the document; duplicates of either
//! dropped). In this process: all-MiniLM-L6-v2 (our GGUF) on llama.cpp embeds every chunk, a
//! [`RetrievalIndex`] indexes them; then ingestion docs/s, HNSW build time, search latency
//! p50/p99 per mode (index only, and the query embedding), recall@10 of HNSW against exact
//! search, and MRR@10 for vector, bm25 and hybrid. With `--cluster-docs N`, also ingestion
//! through a local cluster (`xnai index add` of N files: embed tasks + a retrieval actor) and
//! search latency through the SDK.
//!
//! Data and run: see "Retrieval" in docs/BENCHMARKS.md (`apt-get update` with English
//! translations, `apt-helper cat-file` of `Translation-en`, then this binary with
//! `--translations FILE`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use serde_json::json;
use xnai_inference::llama::ModelCache;
use xnai_inference::{EngineConfig, EngineLoader, InferenceEngine};
use xnai_retrieval::eval::{percentile, recall, reciprocal_rank};
use xnai_retrieval::{
    EmbeddedChunk, EmbeddedDoc, IndexParams, Mutation, RetrievalIndex, SearchMode,
};
use xnai_sdk::SearchMode as SdkMode;
use xnai_tests::{ClusterOptions, start_cluster};

#[derive(Parser, Debug)]
#[command(about = "retrieval benchmark on Debian package descriptions")]
struct Args {
    /// Debian `Translation-en` as text (see the file's doc for the command).
    #[arg(long)]
    translations: PathBuf,
    /// The embedding model (our converted GGUF).
    #[arg(long, default_value = "models/all-minilm-l6-v2-f32.gguf")]
    model: PathBuf,
    /// Documents to index (the first N usable records, in file order).
    #[arg(long, default_value_t = 10_000)]
    docs: usize,
    /// Queries measured (every (docs/queries)-th document's short description).
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Chunk size and overlap in words.
    #[arg(long, default_value_t = 40)]
    chunk: usize,
    #[arg(long, default_value_t = 10)]
    overlap: usize,
    /// llama.cpp slots (concurrent embedding contexts) and threads per slot.
    #[arg(long, default_value_t = 2)]
    slots: usize,
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Also ingest this many documents through a local cluster (0: skip).
    #[arg(long, default_value_t = 0)]
    cluster_docs: usize,
    /// Skip the in-process part (only with --cluster-docs).
    #[arg(long)]
    cluster_only: bool,
}

/// One package: its name, short description (query) and long description (document).
struct Package {
    name: String,
    short: String,
    long: String,
}

/// Parses `Translation-en`: `Package:`, `Description-en: SHORT`, then ` LONG` lines (` .` is a
/// paragraph break). Keeps records whose long text has 8+ words; drops repeated short or long
/// descriptions so each query has exactly one relevant document.
fn parse(text: &str, limit: usize) -> Vec<Package> {
    let mut out = Vec::new();
    let (mut shorts, mut longs) = (HashSet::new(), HashSet::new());
    for record in text.split("\n\n") {
        let mut name = None;
        let mut short = None;
        let mut long = Vec::new();
        for line in record.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Description-en: ") {
                short = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix(' ') {
                long.push(if v.trim() == "." { "" } else { v.trim() });
            }
        }
        let (Some(name), Some(short)) = (name, short) else {
            continue;
        };
        let long = long.join(" ");
        if long.split_whitespace().count() < 8
            || !shorts.insert(short.clone())
            || !longs.insert(long.clone())
        {
            continue;
        }
        out.push(Package { name, short, long });
        if out.len() == limit {
            break;
        }
    }
    out
}

/// Every (len / n)-th package: the measured queries.
fn pick_queries(packages: &[Package], n: usize) -> Vec<&Package> {
    let step = (packages.len() / n.max(1)).max(1);
    packages.iter().step_by(step).take(n).collect()
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn embed_all(
    engine: &dyn InferenceEngine,
    texts: Vec<String>,
    parallel: usize,
) -> Result<Vec<Vec<f32>>> {
    let batches: Vec<Vec<String>> = texts.chunks(16).map(|c| c.to_vec()).collect();
    let results: Vec<_> = futures::stream::iter(batches.into_iter().map(|b| engine.embed(b)))
        .buffered(parallel)
        .collect()
        .await;
    let mut out = Vec::with_capacity(texts.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let text = std::fs::read_to_string(&a.translations)
        .with_context(|| format!("reading {}", a.translations.display()))?;
    let packages = parse(&text, a.docs);
    if packages.len() < a.queries {
        bail!("only {} usable records", packages.len());
    }
    if a.cluster_only {
        let subset = &packages[..a.cluster_docs.min(packages.len())];
        let cluster = cluster_run(&rt, &a, subset, &pick_queries(&packages, a.queries))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "cluster": cluster }))?
        );
        return Ok(());
    }
    let mut params = IndexParams::default();
    params.chunk.size = a.chunk;
    params.chunk.overlap = a.overlap;
    let mut index = RetrievalIndex::new(params)?;
    let chunked: Vec<Vec<String>> = packages.iter().map(|p| index.chunk(&p.long)).collect();
    let n_chunks: usize = chunked.iter().map(Vec::len).sum();
    eprintln!("{} documents, {n_chunks} chunks", packages.len());

    let mut config = EngineConfig::new(&a.model);
    config.embeddings = true;
    config.ctx = 512;
    config.slots = a.slots;
    config.threads = a.threads;
    config.queue_capacity = 4096;
    let cache = ModelCache::new(1 << 30);
    let engine = rt.block_on(cache.load(config))?;

    let started = Instant::now();
    let vectors = rt.block_on(embed_all(engine.as_ref(), chunked.concat(), a.slots))?;
    let embed_s = started.elapsed().as_secs_f64();
    let mut vectors = vectors.into_iter();
    let docs: Vec<EmbeddedDoc> = packages
        .iter()
        .zip(&chunked)
        .map(|(p, chunks)| EmbeddedDoc {
            id: p.name.clone(),
            metadata: Default::default(),
            chunks: chunks
                .iter()
                .map(|t| EmbeddedChunk {
                    text: t.clone(),
                    vector: vectors.next().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let t = Instant::now();
    for batch in docs.chunks(64) {
        index.apply(&Mutation::Add(batch.to_vec()))?;
    }
    let insert_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    index.compact(0);
    let build_s = t.elapsed().as_secs_f64();
    let ingest_s = embed_s + insert_s + build_s;
    eprintln!(
        "embedded in {embed_s:.1} s, inserted in {insert_s:.2} s, HNSW built in {build_s:.1} s"
    );

    let step = packages.len() / a.queries;
    let queries: Vec<&Package> = packages
        .iter()
        .step_by(step.max(1))
        .take(a.queries)
        .collect();
    let t = Instant::now();
    let qvecs = rt.block_on(embed_all(
        engine.as_ref(),
        queries.iter().map(|q| q.short.clone()).collect(),
        1,
    ))?;
    let embed_query_ms = ms(t.elapsed()) / queries.len() as f64;

    let mut report = json!({
        "documents": packages.len(), "chunks": n_chunks, "chunk_words": a.chunk, "overlap": a.overlap,
        "embed_seconds": embed_s, "insert_seconds": insert_s, "hnsw_build_seconds": build_s,
        "ingest_docs_per_second": packages.len() as f64 / ingest_s,
        "ingest_chunks_per_second": n_chunks as f64 / ingest_s,
        "query_embedding_ms_mean": embed_query_ms, "queries": queries.len(),
    });
    let mut recall_sum = 0.0;
    for (mode, name) in [
        (SearchMode::Vector, "vector"),
        (SearchMode::Bm25, "bm25"),
        (SearchMode::Hybrid, "hybrid"),
    ] {
        let (mut lat, mut rr) = (Vec::new(), 0.0);
        for (q, v) in queries.iter().zip(&qvecs) {
            let t = Instant::now();
            let hits = index.search(&q.short, Some(v), 10, mode)?;
            lat.push(ms(t.elapsed()));
            let ranked: Vec<String> = hits.into_iter().map(|h| h.doc_id).collect();
            rr += reciprocal_rank(&ranked, &q.name, 10);
            if mode == SearchMode::Vector {
                let exact = index.exact_vector(v, 10);
                let approx: Vec<(String, u32)> = index
                    .search("", Some(v), 10, SearchMode::Vector)?
                    .into_iter()
                    .map(|h| (h.doc_id, h.chunk))
                    .collect();
                recall_sum += recall(&approx, &exact);
            }
        }
        report[format!("{name}_mrr_at_10")] = json!(rr / queries.len() as f64);
        report[format!("{name}_search_ms_p50")] = json!(percentile(&mut lat, 50.0));
        report[format!("{name}_search_ms_p99")] = json!(percentile(&mut lat, 99.0));
    }
    report["hnsw_recall_at_10"] = json!(recall_sum / queries.len() as f64);
    if a.cluster_docs > 0 {
        report["cluster"] = cluster_run(
            &rt,
            &a,
            &packages[..a.cluster_docs.min(packages.len())],
            &queries,
        )?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Ingestion with `xnai index add` (files, embed tasks over 2 workers, a retrieval actor) and
/// search latency through the SDK (query embedding included).
fn cluster_run(
    rt: &tokio::runtime::Runtime,
    a: &Args,
    packages: &[Package],
    queries: &[&Package],
) -> Result<serde_json::Value> {
    let c = start_cluster(ClusterOptions {
        arena_bytes: "1GiB".into(),
        ..Default::default()
    })?;
    let model = format!("model={}", std::fs::canonicalize(&a.model)?.display());
    c.xnai_ok(&[
        "actor",
        "create",
        "inference",
        "--name",
        "emb",
        "--",
        &model,
        "ctx=512",
    ])?;
    let chunk = format!("chunk={}", a.chunk);
    let overlap = format!("overlap={}", a.overlap);
    c.xnai_ok(&[
        "actor",
        "create",
        "retrieval",
        "--name",
        "docs",
        "--",
        "embedder=emb",
        &chunk,
        &overlap,
    ])?;
    let dir = tempfile::tempdir()?;
    for p in packages {
        std::fs::write(dir.path().join(format!("{}.txt", p.name)), &p.long)?;
    }
    let t = Instant::now();
    let out = c.xnai_ok(&[
        "index",
        "add",
        "--actor",
        "docs",
        "--json",
        &dir.path().display().to_string(),
    ])?;
    let ingest_s = t.elapsed().as_secs_f64();
    let added: serde_json::Value = serde_json::from_str(&out)?;
    let client = rt.block_on(c.client())?;
    let docs = rt.block_on(client.get_actor("docs"))?;
    let mut lat = Vec::new();
    for q in queries.iter().take(200) {
        let t = Instant::now();
        rt.block_on(client.search(&docs, &q.short, 10, SdkMode::Hybrid))?;
        lat.push(ms(t.elapsed()));
    }
    Ok(json!({
        "documents": added["documents"], "chunks": added["chunks"], "workers": 2,
        "index_add_seconds": ingest_s, "index_add_docs_per_second": added["documents"].as_f64().unwrap_or(0.0) / ingest_s,
        "hybrid_search_ms_p50": percentile(&mut lat, 50.0), "hybrid_search_ms_p99": percentile(&mut lat, 99.0),
    }))
}
