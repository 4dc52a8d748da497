//! The benchmark measurement, as a library so the in-process run (`examples/llama_bench.rs`)
//! and the cluster benchmark measure the same way: a prompt of exactly `prompt_tokens`
//! tokens, `gen_tokens` generated greedily, repeated, medians reported. Times to first token
//! are taken by the caller (from the `generate` call to the first token event).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::{GenerateEvent, GenerateParams, InferenceEngine};
use crate::error::{InferenceError, Result};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchSpec {
    /// Prompt length in tokens (BOS included).
    pub prompt_tokens: usize,
    /// Tokens to generate.
    pub gen_tokens: u32,
    /// Repetitions (medians are reported).
    pub runs: usize,
}

impl Default for BenchSpec {
    fn default() -> Self {
        Self {
            prompt_tokens: 128,
            gen_tokens: 64,
            runs: 5,
        }
    }
}

/// One measured call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    /// Prompt tokens evaluated.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// Prompt tokens per second (engine's prompt timing).
    pub prompt_tokens_per_s: f64,
    /// Generated tokens per second (engine's generation timing).
    pub generated_tokens_per_s: f64,
    /// Caller-side time from the call to the first token.
    pub time_to_first_token_ms: f64,
    /// Caller-side time of the whole call.
    pub total_ms: f64,
}

/// Medians over the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The spec measured.
    pub spec: BenchSpec,
    /// Median prompt tokens per second.
    pub prompt_tokens_per_s: f64,
    /// Median generated tokens per second.
    pub generated_tokens_per_s: f64,
    /// Median time to first token.
    pub time_to_first_token_ms: f64,
    /// Every run.
    pub runs: Vec<BenchRun>,
}

/// Builds a prompt of exactly `tokens` tokens for `engine` (or as close as the tokenizer
/// allows, never longer).
pub async fn prompt_of(engine: &dyn InferenceEngine, tokens: usize) -> Result<String> {
    const WORDS: &[&str] = &[
        "the", "river", "runs", "past", "old", "stone", "mills", "where", "farmers", "once",
        "ground", "wheat", "into", "flour", "for", "bread", "and", "cakes",
    ];
    let mut words: Vec<&str> = WORDS.iter().copied().cycle().take(tokens * 2).collect();
    loop {
        let text = words.join(" ");
        let n = engine.tokenize(text.clone()).await?.len();
        if n <= tokens || words.is_empty() {
            return Ok(text);
        }
        let excess = (n - tokens).max(1);
        words.truncate(words.len().saturating_sub(excess));
    }
}

/// Runs one greedy generation of `prompt` and measures it.
pub async fn run_once(
    engine: &dyn InferenceEngine,
    prompt: &str,
    gen_tokens: u32,
) -> Result<BenchRun> {
    let params = GenerateParams {
        max_tokens: gen_tokens,
        ..GenerateParams::default()
    };
    let start = Instant::now();
    let mut stream = engine.generate(prompt.to_string(), params)?;
    let mut first = None;
    while let Some(event) = stream.next().await {
        match event? {
            GenerateEvent::Token(_) => {
                first.get_or_insert_with(|| start.elapsed().as_secs_f64() * 1000.0);
            }
            GenerateEvent::Done(stats) => {
                let total_ms = start.elapsed().as_secs_f64() * 1000.0;
                return Ok(BenchRun {
                    prompt_tokens: stats.prompt_tokens,
                    generated_tokens: stats.generated_tokens,
                    prompt_tokens_per_s: stats.prompt_tokens_per_s(),
                    generated_tokens_per_s: stats.generated_tokens_per_s(),
                    time_to_first_token_ms: first.unwrap_or(total_ms),
                    total_ms,
                });
            }
        }
    }
    Err(InferenceError::Stopped)
}

/// Measures `spec` on `engine`: one warm-up call, then `spec.runs` calls; medians.
pub async fn measure(engine: &dyn InferenceEngine, spec: BenchSpec) -> Result<BenchReport> {
    let prompt = prompt_of(engine, spec.prompt_tokens).await?;
    run_once(engine, &prompt, spec.gen_tokens.min(4)).await?;
    let mut runs = Vec::with_capacity(spec.runs);
    for _ in 0..spec.runs.max(1) {
        runs.push(run_once(engine, &prompt, spec.gen_tokens).await?);
    }
    Ok(BenchReport {
        spec,
        prompt_tokens_per_s: median(runs.iter().map(|r| r.prompt_tokens_per_s)),
        generated_tokens_per_s: median(runs.iter().map(|r| r.generated_tokens_per_s)),
        time_to_first_token_ms: median(runs.iter().map(|r| r.time_to_first_token_ms)),
        runs,
    })
}

/// Aggregate generated tokens per second of `callers` concurrent calls (each `spec.gen_tokens`
/// tokens after a `spec.prompt_tokens` prompt), wall-clock from the first call to the last
/// `Done`.
pub async fn measure_concurrent(
    engine: &dyn InferenceEngine,
    spec: BenchSpec,
    callers: usize,
) -> Result<f64> {
    let prompt = prompt_of(engine, spec.prompt_tokens).await?;
    let start = Instant::now();
    let calls = (0..callers.max(1)).map(|_| run_once(engine, &prompt, spec.gen_tokens));
    let mut generated = 0u64;
    for run in futures::future::join_all(calls).await {
        generated += u64::from(run?.generated_tokens);
    }
    Ok(generated as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Median of `values` (0 for none).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::fake::FakeEngine;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[tokio::test]
    async fn measures_fake_engine() {
        let config = EngineConfig {
            slots: 2,
            queue_capacity: 4,
            ..EngineConfig::new("f.gguf")
        };
        let engine = FakeEngine::new(config).with_reply(" a b c d");
        let prompt = prompt_of(&engine, 20).await.expect("prompt");
        assert!(engine.tokenize(prompt).await.expect("tokens").len() <= 20);
        let spec = BenchSpec {
            prompt_tokens: 20,
            gen_tokens: 3,
            runs: 3,
        };
        let report = measure(&engine, spec).await.expect("report");
        assert_eq!(report.runs.len(), 3);
        assert_eq!(report.runs[0].generated_tokens, 3);
        assert!(
            measure_concurrent(&engine, spec, 4)
                .await
                .expect("aggregate")
                > 0.0
        );
    }
}
