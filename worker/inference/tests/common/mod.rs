//! Shared helpers of the real-model tests: locating Gemma 3 270M (failing loudly when it is
//! absent), one process-wide model cache, and engines with test-sized parameters.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use xnai_inference::llama::{LlamaEngine, ModelCache};
use xnai_inference::{EngineConfig, InferenceEngine};

/// The France prompt of the acceptance tests.
pub const FRANCE: &str = "Question: What is the capital of France?\nAnswer:";

/// The Gemma 3 270M file: under `XNAI_MODELS_DIR`, else the workspace's `models/`. Panics with
/// the fix when it is absent: these tests must not pass without the model.
pub fn model_path() -> PathBuf {
    let dir = std::env::var_os("XNAI_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let path = dir.join("gemma-3-270m-q4_k_m.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh (or set XNAI_MODELS_DIR)",
        path.display()
    );
    path
}

/// One cache for the whole test binary, with room for a few models.
pub fn cache() -> &'static ModelCache {
    static CACHE: OnceLock<ModelCache> = OnceLock::new();
    CACHE.get_or_init(|| ModelCache::new(4 << 30))
}

/// Test engine parameters: ctx 512, 2 threads, batch 128.
pub fn config() -> EngineConfig {
    EngineConfig {
        ctx: 512,
        batch: 128,
        ..EngineConfig::new(model_path())
    }
}

/// Loads an engine with `config` through the shared cache.
pub async fn engine(config: EngineConfig) -> Arc<LlamaEngine> {
    tracing_init();
    let cache = cache().clone();
    let engine = tokio::task::spawn_blocking(move || LlamaEngine::load(&cache, config))
        .await
        .expect("load task")
        .expect("engine loads");
    Arc::new(engine)
}

/// Greedy text of `max_tokens` for `prompt`, with `stop` strings.
pub async fn greedy(
    engine: &dyn InferenceEngine,
    prompt: &str,
    max_tokens: u32,
    stop: &[&str],
) -> String {
    let params = xnai_inference::GenerateParams {
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let (text, _) = engine
        .generate(prompt.into(), params)
        .expect("admitted")
        .collect()
        .await
        .expect("generated");
    text
}

/// Logs to the test output (`RUST_LOG` picks the level; llama.cpp's own logs are quiet).
pub fn tracing_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama_cpp_2=warn".into()),
        )
        .with_test_writer()
        .try_init();
}
