//! The converted MiniLM GGUF in llama.cpp (through `xnai-inference`, as the worker loads it)
//! tokenises like Hugging Face's tokenizer and embeds like the numpy reference of the same
//! model: cosine at least 0.9999 and every component within 1e-3, on each reference sentence.

use serde::Deserialize;
use xnai_inference::llama::ModelCache;
use xnai_inference::{EngineConfig, EngineLoader};
use xnai_tests::init_tracing;

use super::{minilm_path, minilm_reference_path};

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    token_ids: Vec<Vec<i32>>,
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn t10_minilm_matches_the_numpy_reference() -> anyhow::Result<()> {
    init_tracing();
    let reference: Reference = serde_json::from_slice(&std::fs::read(minilm_reference_path()?)?)?;
    tracing::info!("--- phase: load the converted GGUF through the worker's model cache");
    let mut config = EngineConfig::new(minilm_path()?);
    config.embeddings = true;
    config.ctx = 512;
    let cache = ModelCache::new(1 << 30);
    let rt = tokio::runtime::Runtime::new()?;
    let engine = rt.block_on(cache.load(config))?;
    let info = engine.info();
    assert_eq!(info.embedding_dim, 384);
    assert_eq!(info.model.architecture, "bert");

    tracing::info!("--- phase: same token ids as tokenizer.json, same vectors as numpy");
    let vectors = rt.block_on(engine.embed(reference.sentences.clone()))?;
    for (i, sentence) in reference.sentences.iter().enumerate() {
        let ids = rt.block_on(engine.tokenize(sentence.clone()))?;
        assert_eq!(ids, reference.token_ids[i], "token ids of {sentence:?}");
        let (ours, want) = (&vectors[i], &reference.embeddings[i]);
        assert_eq!(ours.len(), want.len());
        let cosine: f32 = ours.iter().zip(want).map(|(a, b)| a * b).sum();
        let max_abs = ours
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        tracing::info!(sentence, cosine, max_abs, "compared");
        assert!(cosine >= 0.9999, "cosine {cosine} for {sentence:?}");
        assert!(
            max_abs <= 1e-3,
            "max abs difference {max_abs} for {sentence:?}"
        );
    }
    Ok(())
}
