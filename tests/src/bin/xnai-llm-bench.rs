//! `xnai-llm-bench`: llama.cpp through llama-cpp-2 in this process against the same model
//! through the cluster (SDK -> `Worker.CallActorStream` -> inference actor), in one run:
//! a prompt of exactly N tokens, M tokens generated greedily, runs alternated between the two
//! so machine noise hits both alike; medians of generated tokens/s, prompt tokens/s and time
//! to first token; then the aggregate tokens/s of 4 concurrent callers on one actor with 2
//! slots. Both sides are timed the same way, by the caller: time to first token from the call,
//! prompt tokens/s = prompt tokens / time to first token, generated tokens/s = (n - 1) / (time
//! of the last token - time of the first).
//!
//! Run: `cargo build --release --bins && target/release/xnai-llm-bench` (docs/BENCHMARKS.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{Stream, StreamExt};
use xnai_inference::bench::{median, prompt_of};
use xnai_inference::llama::ModelCache;
use xnai_inference::{EngineConfig, EngineLoader, GenerateParams, InferenceEngine};
use xnai_sdk::{
    ActorHandle, ActorOptions, Client, GenerateEvent, GenerateRequest, InferenceParams, ModelSource,
};
use xnai_tests::{ClusterOptions, start_cluster};

#[derive(Parser, Debug)]
#[command(about = "llama.cpp in-process vs through the xnai cluster")]
struct Args {
    /// The GGUF model.
    #[arg(long, default_value = "models/gemma-3-270m-q4_k_m.gguf")]
    model: PathBuf,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens generated per run.
    #[arg(long, default_value_t = 64)]
    gen_tokens: u32,
    /// Threads per evaluation (both sides).
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Measured runs per side (after one warm-up each).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Concurrent callers for the aggregate measurement (on an actor with 2 slots).
    #[arg(long, default_value_t = 4)]
    callers: usize,
}

/// One caller-timed generation.
#[derive(Debug, Clone, Copy)]
struct Run {
    ttft_ms: f64,
    prompt_tps: f64,
    gen_tps: f64,
    generated: u32,
}

/// Times a stream of generation events from `start` (the moment of the call).
async fn observe<S, E>(start: Instant, mut events: S) -> Result<Run>
where
    S: Stream<Item = std::result::Result<GenerateEvent, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let (mut first, mut last) = (None, None);
    while let Some(event) = events.next().await {
        match event? {
            GenerateEvent::Token(_) => {
                let t = start.elapsed().as_secs_f64() * 1000.0;
                first.get_or_insert(t);
                last = Some(t);
            }
            GenerateEvent::Done(stats) => {
                let (Some(first), Some(last)) = (first, last) else {
                    bail!("generation produced no text: {stats:?}");
                };
                let n = f64::from(stats.generated_tokens.saturating_sub(1));
                return Ok(Run {
                    ttft_ms: first,
                    prompt_tps: f64::from(stats.prompt_tokens) * 1000.0 / first,
                    gen_tps: n * 1000.0 / (last - first).max(1e-6),
                    generated: stats.generated_tokens,
                });
            }
        }
    }
    bail!("the stream ended without stats")
}

async fn local_run(engine: &dyn InferenceEngine, prompt: &str, tokens: u32) -> Result<Run> {
    let params = GenerateParams {
        max_tokens: tokens,
        ..GenerateParams::default()
    };
    let start = Instant::now();
    let rx = engine.generate(prompt.to_string(), params)?.into_inner();
    observe(start, tokio_stream::wrappers::ReceiverStream::new(rx)).await
}

async fn cluster_run(
    client: &Client,
    actor: &ActorHandle,
    prompt: &str,
    tokens: u32,
) -> Result<Run> {
    let mut request = GenerateRequest::new(prompt);
    request.max_tokens = tokens;
    let start = Instant::now();
    let events = client.generate_stream(actor, &request).await?;
    observe(start, events).await
}

fn row(name: &str, local: f64, cluster: f64, unit: &str) {
    println!(
        "| {name} | {local:.1} {unit} | {cluster:.1} {unit} | {:.3} |",
        cluster / local.max(1e-9)
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let model = std::fs::canonicalize(&args.model).with_context(|| {
        format!(
            "{} missing: run scripts/fetch-models.sh",
            args.model.display()
        )
    })?;
    let config = EngineConfig {
        threads: args.threads,
        slots: 2,
        ctx: 512,
        batch: 512,
        ..EngineConfig::new(&model)
    };
    let cache = ModelCache::new(u64::MAX);
    let engine: Arc<dyn InferenceEngine> = cache.load(config).await?;
    let prompt = prompt_of(engine.as_ref(), args.prompt_tokens).await?;

    eprintln!("starting a 1-worker cluster ...");
    let cluster = start_cluster(ClusterOptions {
        workers: 1,
        ..ClusterOptions::default()
    })?;
    let client = cluster.client().await?;
    let params = InferenceParams {
        ctx: 512,
        threads: args.threads,
        batch: 512,
        slots: 2,
        queue: 16,
        embeddings: false,
    };
    let actor = client
        .create_inference_actor(
            ModelSource::Path(model.clone()),
            params,
            ActorOptions::default(),
        )
        .await?;

    local_run(engine.as_ref(), &prompt, 4).await?;
    cluster_run(&client, &actor, &prompt, 4).await?;
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for i in 0..args.runs.max(1) {
        eprintln!("run {}/{}", i + 1, args.runs);
        local.push(local_run(engine.as_ref(), &prompt, args.gen_tokens).await?);
        remote.push(cluster_run(&client, &actor, &prompt, args.gen_tokens).await?);
    }
    let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f));

    eprintln!("{} concurrent callers ...", args.callers);
    let start = Instant::now();
    let calls = (0..args.callers).map(|_| local_run(engine.as_ref(), &prompt, args.gen_tokens));
    let mut n = 0u64;
    for r in futures::future::join_all(calls).await {
        n += u64::from(r?.generated);
    }
    let local_agg = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let calls = (0..args.callers).map(|_| cluster_run(&client, &actor, &prompt, args.gen_tokens));
    let mut n = 0u64;
    for r in futures::future::join_all(calls).await {
        n += u64::from(r?.generated);
    }
    let cluster_agg = n as f64 / start.elapsed().as_secs_f64();

    println!(
        "model {}, {} prompt + {} generated tokens, {} threads, median of {} runs (caller-timed)\n",
        model
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
        args.prompt_tokens,
        args.gen_tokens,
        args.threads,
        args.runs
    );
    println!("| measure | llama-cpp-2 in-process | xnai cluster (streaming) | ratio |");
    println!("|---|---|---|---|");
    row(
        "generated tokens/s",
        med(&local, |r| r.gen_tps),
        med(&remote, |r| r.gen_tps),
        "tok/s",
    );
    row(
        "prompt tokens/s",
        med(&local, |r| r.prompt_tps),
        med(&remote, |r| r.prompt_tps),
        "tok/s",
    );
    row(
        "time to first token",
        med(&local, |r| r.ttft_ms),
        med(&remote, |r| r.ttft_ms),
        "ms",
    );
    row(
        &format!("aggregate tokens/s, {} callers, 2 slots", args.callers),
        local_agg,
        cluster_agg,
        "tok/s",
    );
    drop(cluster);
    Ok(())
}
