//! The retrieval commands: `xnai index add` (files and directories of text and markdown,
//! chunked here with the actor's parameters, embedded as `embed` tasks spread over the workers,
//! stored with `add_embedded`; progress with docs/s on stderr; what was skipped and why),
//! `xnai index stats`, `xnai search` and `xnai ask` (retrieve, generate, cite).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use serde_json::json;
use xnai_retrieval::chunk::{ChunkParams, chunk_text};

use super::output::print_json;
use xnai_sdk::{
    ActorHandle, Added, Arg, ChunkHit, Client, EmbeddedChunk, EmbeddedDoc, NewDocument, SearchMode,
    TaskOptions,
};

/// Extensions `index add` reads (text and markdown).
const TEXT_EXTENSIONS: &[&str] = &["txt", "text", "md", "markdown", "rst"];
/// Documents sent to the actor per `add_embedded` call.
const DOCS_PER_ADD: usize = 64;

/// `xnai index ...`.
#[derive(clap::Subcommand, Debug)]
pub enum IndexCommand {
    /// Add files (text, markdown) and directories (recursively) to a retrieval actor.
    Add(IndexAddArgs),
    /// Counts and parameters of a retrieval actor's index.
    Stats {
        /// The retrieval actor (name or id).
        #[arg(long)]
        actor: String,
    },
}

/// `xnai index add`.
#[derive(clap::Args, Debug)]
pub struct IndexAddArgs {
    /// The retrieval actor (name or id).
    #[arg(long)]
    pub actor: String,
    /// Chunks per embedding task.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Embedding tasks in flight at once (spread over the workers by the scheduler).
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Send the texts to the actor's `add` instead (it embeds through its own embedder): for
    /// models that are not a file on every worker (e.g. an inference actor built from an
    /// object).
    #[arg(long)]
    pub in_actor: bool,
    /// Files and directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// `xnai search`.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// The retrieval actor (name or id).
    #[arg(long)]
    pub actor: String,
    /// How many hits.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// vector, bm25 or hybrid.
    #[arg(long, default_value = "hybrid")]
    pub mode: String,
    /// The query (words are joined by spaces).
    #[arg(required = true)]
    pub query: Vec<String>,
}

/// `xnai ask`.
#[derive(clap::Args, Debug)]
pub struct AskArgs {
    /// The retrieval actor (name or id).
    #[arg(long)]
    pub retrieval: String,
    /// The inference actor that generates the answer.
    #[arg(long)]
    pub generator: String,
    /// Passages to retrieve.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Most tokens in the answer.
    #[arg(long, default_value_t = 48)]
    pub max_tokens: u32,
    /// The question (words are joined by spaces).
    #[arg(required = true)]
    pub question: Vec<String>,
}

/// A file `index add` did not index, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    path: String,
    reason: String,
}

/// Collects the files under `paths` (sorted, directories recursively), and the skipped ones.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |p: &Path, reason: String| {
        skipped.push(Skipped {
            path: p.display().to_string(),
            reason,
        })
    };
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                skip(&p, format!("cannot read: {e}"));
                continue;
            }
        };
        if meta.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(entries) => {
                    let mut children: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|c| {
                            !c.file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                        })
                        .collect();
                    children.sort();
                    stack.extend(children.into_iter().rev());
                }
                Err(e) => skip(&p, format!("cannot list directory: {e}")),
            }
            continue;
        }
        let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase());
        match ext.as_deref() {
            Some(e) if TEXT_EXTENSIONS.contains(&e) => files.push(p),
            Some(e) => skip(&p, format!("not text or markdown (.{e})")),
            None => skip(
                &p,
                "no extension (reads .txt .text .md .markdown .rst)".into(),
            ),
        }
    }
    (files, skipped)
}

/// What the retrieval actor's stats say about chunking and embedding.
struct IndexSetup {
    chunk: ChunkParams,
    model_path: String,
}

async fn setup(client: &Client, actor: &ActorHandle) -> Result<IndexSetup> {
    let stats = client.retrieval_stats(actor).await?;
    let chunk: ChunkParams = serde_json::from_value(stats["params"]["chunk"].clone())
        .context("the actor's stats have no chunk parameters")?;
    let model_path = if let Some(path) = stats["embedder"]["model"].as_str() {
        path.to_string()
    } else if let Some(name) = stats["embedder"]["actor"].as_str() {
        let embedder = client.get_actor(name).await?;
        let info = client.inference_info(&embedder).await?;
        info.config.model_path.display().to_string()
    } else {
        bail!("the actor's stats name no embedder");
    };
    Ok(IndexSetup { chunk, model_path })
}

/// Runs `xnai index add`.
pub async fn index_add(client: Client, a: IndexAddArgs, json: bool) -> Result<()> {
    let actor = client.get_actor(&a.actor).await?;
    let setup = setup(&client, &actor).await?;
    let (files, mut skipped) = collect_files(&a.paths);
    let mut docs = Vec::new();
    let mut raw = Vec::new();
    for path in files {
        match std::fs::read(&path) {
            Err(e) => skipped.push(Skipped {
                path: path.display().to_string(),
                reason: format!("cannot read: {e}"),
            }),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason: "not UTF-8 text".into(),
                }),
                Ok(text) => {
                    let chunks = chunk_text(&text, setup.chunk);
                    if chunks.is_empty() {
                        skipped.push(Skipped {
                            path: path.display().to_string(),
                            reason: "empty".into(),
                        });
                    } else {
                        docs.push((path.display().to_string(), chunks));
                        raw.push(text);
                    }
                }
            },
        }
    }
    let total_docs = docs.len();
    let started = Instant::now();
    let (mut done_docs, mut done_chunks) = (0usize, 0usize);
    let mut progress = |added: Added| {
        done_docs += added.documents;
        done_chunks += added.chunks;
        let rate = done_docs as f64 / started.elapsed().as_secs_f64().max(1e-9);
        if !json {
            eprint!(
                "\rindexed {done_docs}/{total_docs} documents ({done_chunks} chunks), {rate:.1} docs/s "
            );
        }
    };
    // The next group's embedding tasks run while the actor stores the previous group, so the
    // workers do not idle during stores (and snapshot rebuilds).
    let mut pending: Option<Vec<EmbeddedDoc>> = None;
    for (n, group) in docs.chunks(DOCS_PER_ADD).enumerate() {
        if a.in_actor {
            let start = n * DOCS_PER_ADD;
            let texts: Vec<NewDocument> = group
                .iter()
                .zip(&raw[start..start + group.len()])
                .map(|((path, _), text)| NewDocument {
                    id: path.clone(),
                    text: text.clone(),
                    metadata: [("source".to_string(), path.clone())].into(),
                })
                .collect();
            progress(client.add_documents(&actor, &texts).await?);
            continue;
        }
        let chunks: usize = group.iter().map(|(_, c)| c.len()).sum();
        // Enough tasks per group to keep `parallel` in flight, at most `batch` chunks each.
        let batch = chunks.div_ceil(a.parallel.max(1)).clamp(1, a.batch.max(1));
        let next = embed_group(&client, &setup.model_path, group, batch, a.parallel.max(1));
        let embedded = match pending.take() {
            Some(previous) => {
                let store = async { Ok(client.add_embedded(&actor, &previous).await?) };
                let (added, embedded) = futures::try_join!(store, next)?;
                progress(added);
                embedded
            }
            None => next.await?,
        };
        pending = Some(embedded);
    }
    if let Some(previous) = pending {
        progress(client.add_embedded(&actor, &previous).await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = done_docs as f64 / secs.max(1e-9);
    if json {
        return print_json(&json!({
            "documents": done_docs, "chunks": done_chunks, "seconds": secs,
            "docs_per_second": rate, "skipped": skipped,
        }));
    }
    if total_docs > 0 {
        eprintln!();
    }
    println!("added {done_docs} documents ({done_chunks} chunks) in {secs:.1} s, {rate:.1} docs/s");
    if !skipped.is_empty() {
        println!("skipped {}:", skipped.len());
        for s in &skipped {
            println!("  {}: {}", s.path, s.reason);
        }
    }
    Ok(())
}

/// Embeds every chunk of `group` as `embed` tasks of `batch` chunks, `parallel` at a time.
async fn embed_group(
    client: &Client,
    model_path: &str,
    group: &[(String, Vec<String>)],
    batch: usize,
    parallel: usize,
) -> Result<Vec<EmbeddedDoc>> {
    let texts: Vec<&String> = group.iter().flat_map(|(_, c)| c).collect();
    let batches: Vec<Vec<&String>> = texts.chunks(batch).map(|b| b.to_vec()).collect();
    let results = futures::stream::iter(batches.into_iter().map(|b| async move {
        let body = serde_json::to_string(&b)?;
        let task = client
            .submit(
                "embed",
                vec![Arg::from(model_path), Arg::from(body.as_str())],
                TaskOptions::default(),
            )
            .await?;
        let out = client.get(&task, std::time::Duration::from_secs(600)).await;
        let _ = client.free(std::slice::from_ref(&task)).await;
        let vectors: Vec<Vec<f32>> = serde_json::from_slice(&out?)?;
        if vectors.len() != b.len() {
            return Err(anyhow!(
                "an embed task returned {} vectors for {} texts",
                vectors.len(),
                b.len()
            ));
        }
        Ok::<_, anyhow::Error>(vectors)
    }))
    .buffered(parallel)
    .collect::<Vec<_>>()
    .await;
    let mut vectors = Vec::with_capacity(texts.len());
    for r in results {
        vectors.extend(r.context("embedding task")?);
    }
    let mut vectors = vectors.into_iter();
    let mut out = Vec::with_capacity(group.len());
    for (path, chunks) in group {
        let chunks = chunks
            .iter()
            .map(|t| EmbeddedChunk {
                text: t.clone(),
                vector: vectors.next().unwrap_or_default(),
            })
            .collect();
        out.push(EmbeddedDoc {
            id: path.clone(),
            metadata: [("source".to_string(), path.clone())].into(),
            chunks,
        });
    }
    Ok(out)
}

/// Runs `xnai index stats`.
pub async fn index_stats(client: Client, actor: &str) -> Result<()> {
    let actor = client.get_actor(actor).await?;
    let stats = client.retrieval_stats(&actor).await?;
    print_json(&stats)
}

fn print_hits(hits: &[ChunkHit]) {
    for (i, h) in hits.iter().enumerate() {
        let source = h.metadata.get("source").unwrap_or(&h.doc_id);
        let preview: String = h.text.chars().take(160).collect();
        println!(
            "{:>2}. {:.4}  {} #{}  {source}\n    {preview}",
            i + 1,
            h.score,
            h.doc_id,
            h.chunk
        );
    }
}

/// Runs `xnai search`.
pub async fn search(client: Client, a: SearchArgs, json: bool) -> Result<()> {
    let mode: SearchMode = a.mode.parse()?;
    let actor = client.get_actor(&a.actor).await?;
    let hits = client.search(&actor, &a.query.join(" "), a.k, mode).await?;
    if json {
        return print_json(&hits);
    }
    if hits.is_empty() {
        println!("no match");
    }
    print_hits(&hits);
    Ok(())
}

/// Runs `xnai ask`.
pub async fn ask(client: Client, a: AskArgs, json: bool) -> Result<()> {
    let retrieval = client.get_actor(&a.retrieval).await?;
    let generator = client.get_actor(&a.generator).await?;
    let question = a.question.join(" ");
    let answer = client
        .ask(&retrieval, &generator, &question, a.k, a.max_tokens)
        .await?;
    if json {
        return print_json(&answer);
    }
    println!("{}", answer.answer);
    println!();
    println!("Sources:");
    for (i, h) in answer.passages.iter().enumerate() {
        let n = i + 1;
        let mark = if answer.cited.contains(&n) { "*" } else { " " };
        let source = h.metadata.get("source").unwrap_or(&h.doc_id);
        println!("{mark}[{n}] {source} (chunk {})", h.chunk);
    }
    if answer.cited.is_empty() {
        println!("(the answer cites none of them)");
    } else {
        println!("(* cited by the answer)");
    }
    Ok(())
}
