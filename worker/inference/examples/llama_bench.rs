//! The in-process baseline: llama.cpp through llama-cpp-2 in one process, 2 threads, 128
//! prompt + 64 generated tokens, N runs, medians; then aggregate generated tokens/s of 4
//! concurrent callers on one engine with 2 slots. The cluster benchmark mirrors it through
//! `xnai_inference::bench`.
//!
//! Run: `cargo run --release -p xnai-inference --example llama_bench -- [RUNS] [MODEL.gguf]`.

use std::path::PathBuf;

use xnai_inference::bench::{self, BenchSpec};
use xnai_inference::llama::{LlamaEngine, ModelCache};
use xnai_inference::{EngineConfig, InferenceEngine};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let model = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XNAI_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
            .join("gemma-3-270m-q4_k_m.gguf")
    });
    anyhow::ensure!(
        model.exists(),
        "{} missing: run scripts/fetch-models.sh",
        model.display()
    );
    let cache = ModelCache::new(u64::MAX);
    let spec = BenchSpec {
        prompt_tokens: 128,
        gen_tokens: 64,
        runs,
    };

    let config = EngineConfig {
        ctx: 1024,
        threads: 2,
        batch: 512,
        slots: 1,
        ..EngineConfig::new(&model)
    };
    let engine = {
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || LlamaEngine::load(&cache, config)).await??
    };
    let report = bench::measure(&engine, spec).await?;
    let run = &report.runs[0];
    println!(
        "model {} | threads 2 | prompt {} tokens, generated {} tokens, {} runs",
        model.display(),
        run.prompt_tokens,
        run.generated_tokens,
        report.runs.len()
    );
    println!(
        "median prompt tokens/s     {:8.1}",
        report.prompt_tokens_per_s
    );
    println!(
        "median generated tokens/s  {:8.1}",
        report.generated_tokens_per_s
    );
    println!(
        "median time to first token {:8.1} ms",
        report.time_to_first_token_ms
    );
    drop(engine);

    let config = EngineConfig {
        ctx: 1024,
        threads: 2,
        batch: 512,
        slots: 2,
        queue_capacity: 4,
        ..EngineConfig::new(&model)
    };
    let engine = tokio::task::spawn_blocking(move || LlamaEngine::load(&cache, config)).await??;
    let aggregate = bench::measure_concurrent(&engine, spec, 4).await?;
    println!("aggregate generated tokens/s, 4 callers on 2 slots: {aggregate:.1}");
    let info = engine.info();
    println!(
        "json {}",
        serde_json::to_string(&serde_json::json!({
            "model": info.model.name, "threads": 2, "prompt_tokens_per_s": report.prompt_tokens_per_s,
            "generated_tokens_per_s": report.generated_tokens_per_s,
            "time_to_first_token_ms": report.time_to_first_token_ms,
            "aggregate_4x2_generated_tokens_per_s": aggregate,
        }))?
    );
    Ok(())
}
