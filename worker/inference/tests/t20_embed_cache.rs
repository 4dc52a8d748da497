//! Embeddings, tokenization, `info` and the model cache on the real Gemma 3 270M: vector
//! dimension and determinism, one resident copy shared by engines, and the memory budget.

mod common;

use std::time::{Duration, Instant};

use common::{FRANCE, config, engine, model_path};
use xnai_inference::llama::{LlamaEngine, ModelCache};
use xnai_inference::{EngineConfig, InferenceEngine, InferenceError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_embed_gives_model_dimension_and_is_deterministic() {
    let engine = engine(EngineConfig {
        embeddings: true,
        ..config()
    })
    .await;
    assert_eq!(engine.info().embedding_dim, 640);
    let texts = vec![
        "Paris is in France".to_string(),
        "Paris is in France".into(),
        "a bowl of soup".into(),
    ];
    let vectors = engine.embed(texts).await.expect("embed");
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| v.len() == 640));
    assert_eq!(vectors[0], vectors[1], "identical texts, identical vectors");
    assert_ne!(vectors[0], vectors[2]);
    let norm: f32 = vectors[0].iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-3, "unit length, got {norm}");
    tracing::info!("--- generation works on the same engine");
    assert!(
        common::greedy(engine.as_ref(), FRANCE, 8, &[])
            .await
            .contains("Paris")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t21_embed_needs_embeddings_on() {
    let engine = engine(config()).await;
    let err = engine.embed(vec!["x".into()]).await.expect_err("off");
    assert!(matches!(err, InferenceError::EmbeddingsDisabled), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t22_tokenize_and_info() {
    let engine = engine(config()).await;
    let tokens = engine.tokenize(FRANCE.into()).await.expect("tokenize");
    assert!(tokens.len() > 5, "{tokens:?}");
    assert_eq!(tokens[0], 2, "Gemma adds <bos> (id 2)");
    let info = engine.info();
    assert_eq!(info.model.architecture, "gemma3");
    assert_eq!(info.model.block_count, 18);
    assert_eq!(info.config.ctx, 512);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t23_cache_shares_models_and_keeps_its_budget() {
    common::tracing_init();
    let original = model_path();
    let size = std::fs::metadata(&original).expect("model").len();
    // A second path to the same bytes, so the cache sees two models.
    let dir = tempfile::Builder::new()
        .prefix(".xnai-test-")
        .tempdir_in(original.parent().expect("models dir"))
        .expect("tempdir");
    let other = dir.path().join("copy.gguf");
    if std::fs::hard_link(&original, &other).is_err() {
        std::fs::copy(&original, &other).expect("copy model");
    }
    let cache = ModelCache::new(size + size / 2);
    let load = |path: std::path::PathBuf| {
        let cache = cache.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                LlamaEngine::load(
                    &cache,
                    EngineConfig {
                        ctx: 128,
                        batch: 64,
                        ..EngineConfig::new(path)
                    },
                )
            })
            .await
            .expect("task")
        }
    };
    tracing::info!("--- two engines share one resident model");
    let a = load(original.clone()).await.expect("a");
    let b = load(original.clone()).await.expect("b");
    assert_eq!(cache.resident().len(), 1);
    assert!(cache.resident()[0].in_use);
    tracing::info!("--- a second model does not fit while the first is in use");
    match load(other.clone()).await {
        Err(InferenceError::BudgetExceeded { needed_bytes, .. }) => assert_eq!(needed_bytes, size),
        Err(e) => panic!("expected BudgetExceeded, got {e}"),
        Ok(_) => panic!("expected BudgetExceeded, got an engine"),
    }
    tracing::info!("--- once unused, the first is unloaded to make room");
    drop((a, b));
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.resident().iter().any(|m| m.in_use) {
        assert!(
            Instant::now() < deadline,
            "slot threads did not release the model"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = load(other.clone()).await.expect("fits after unloading");
    let resident = cache.resident();
    assert_eq!(resident.len(), 1);
    assert_eq!(
        resident[0].path,
        std::fs::canonicalize(&other).expect("path")
    );
    assert!(common::greedy(&c, FRANCE, 8, &[]).await.contains("Paris"));
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t24_missing_and_foreign_files_are_errors() {
    common::tracing_init();
    let cache = ModelCache::new(1 << 30);
    let missing = LlamaEngine::load(&cache, EngineConfig::new("/nonexistent/model.gguf"));
    assert!(
        matches!(missing, Err(InferenceError::Io { .. })),
        "{:?}",
        missing.err()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a model").expect("write");
    let foreign = LlamaEngine::load(&cache, EngineConfig::new(&junk));
    assert!(
        matches!(foreign, Err(InferenceError::NotGguf { .. })),
        "{:?}",
        foreign.err()
    );
}
