//! `FakeEngine`: an in-memory [`InferenceEngine`] for unit tests of the layers above (actor,
//! gRPC, CLI). It streams a scripted reply word by word with an optional delay, honours
//! `max_tokens`, stop strings, slots and the bounded queue exactly as the real engine does, and
//! returns deterministic unit vectors from `embed`. Needs a tokio runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::engine::{
    EngineConfig, EngineFuture, EngineInfo, EngineLoader, FinishReason, GenerateEvent,
    GenerateParams, GenerateStats, GenerateStream, InferenceEngine,
};
use crate::error::{InferenceError, Result};
use crate::gguf::ModelFacts;
use crate::queue::Admission;
use crate::stop::{StopFilter, StopOutcome};

/// A scripted engine; see the module doc.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    config: EngineConfig,
    admission: Admission,
    slots: Arc<Semaphore>,
    reply: String,
    token_delay: Duration,
    dim: usize,
}

impl FakeEngine {
    /// A fake with `config`'s slots and queue, replying " Paris." with no delay, 16-dim vectors.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            admission: Admission::new(config.slots, config.queue_capacity),
            slots: Arc::new(Semaphore::new(config.slots.max(1))),
            config,
            reply: " Paris.".into(),
            token_delay: Duration::ZERO,
            dim: 16,
        }
    }

    /// Sets the scripted reply (split into tokens at word starts).
    pub fn with_reply(mut self, reply: impl Into<String>) -> Self {
        self.reply = reply.into();
        self
    }

    /// Sleeps this long before each token.
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Sets the embedding dimension.
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = dim.max(1);
        self
    }

    fn pieces(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, c) in self.reply.char_indices() {
            if i == 0 || c.is_whitespace() || out.is_empty() {
                out.push(String::new());
            }
            if let Some(last) = out.last_mut() {
                last.push(c);
            }
        }
        out
    }
}

impl InferenceEngine for FakeEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            model: ModelFacts {
                architecture: "fake".into(),
                name: Some("fake".into()),
                context_length: u64::from(self.config.ctx),
                embedding_length: self.dim as u64,
                block_count: 1,
                head_count: 1,
                head_count_kv: 1,
                key_length: self.dim as u64,
                value_length: self.dim as u64,
                feed_forward_length: None,
                vocab_size: 256,
                file_type: None,
                pooling_type: Some("mean".into()),
                sliding_window: None,
                tensor_count: 0,
                tensor_data_bytes: 0,
                file_bytes: 0,
            },
            config: self.config.clone(),
            embedding_dim: self.dim,
        }
    }

    fn generate(&self, prompt: String, params: GenerateParams) -> Result<GenerateStream> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            InferenceError::InvalidParameter("FakeEngine needs a tokio runtime".into())
        })?;
        let admitted = self.admission.try_admit()?;
        let (tx, rx) = mpsc::channel(64);
        let slots = Arc::clone(&self.slots);
        let pieces = self.pieces();
        let delay = self.token_delay;
        let ctx = self.config.ctx as usize;
        runtime.spawn(async move {
            let _admitted = admitted;
            let called = Instant::now();
            let Ok(_slot) = slots.acquire_owned().await else {
                let _ = tx.send(Err(InferenceError::Stopped)).await;
                return;
            };
            let queue_ms = ms(called.elapsed());
            let prompt_tokens = prompt.len() + 1;
            if prompt_tokens >= ctx {
                let err = InferenceError::PromptTooLong {
                    prompt_tokens,
                    ctx: ctx as u32,
                };
                let _ = tx.send(Err(err)).await;
                return;
            }
            let started = Instant::now();
            let mut filter = StopFilter::new(&params.stop);
            let mut generated = 0u32;
            let mut first_token_ms = None;
            let mut finish = FinishReason::EndOfText;
            for piece in pieces {
                if generated >= params.max_tokens {
                    finish = FinishReason::Length;
                    break;
                }
                tokio::time::sleep(delay).await;
                generated += 1;
                let (text, stopped) = match filter.push(&piece) {
                    StopOutcome::Continue(t) => (t, false),
                    StopOutcome::Stopped(t) => (t, true),
                };
                if !text.is_empty() {
                    first_token_ms.get_or_insert_with(|| ms(called.elapsed()));
                    if tx.send(Ok(GenerateEvent::Token(text))).await.is_err() {
                        return;
                    }
                }
                if stopped {
                    finish = FinishReason::Stop;
                    break;
                }
            }
            let rest = filter.finish();
            if finish != FinishReason::Stop && !rest.is_empty() {
                first_token_ms.get_or_insert_with(|| ms(called.elapsed()));
                let _ = tx.send(Ok(GenerateEvent::Token(rest))).await;
            }
            let stats = GenerateStats {
                prompt_tokens: prompt_tokens as u32,
                generated_tokens: generated,
                queue_ms,
                prompt_ms: 0.0,
                generate_ms: ms(started.elapsed()),
                time_to_first_token_ms: first_token_ms.unwrap_or_else(|| ms(called.elapsed())),
                finish_reason: finish,
            };
            let _ = tx.send(Ok(GenerateEvent::Done(stats))).await;
        });
        Ok(GenerateStream::new(rx))
    }

    fn embed(&self, texts: Vec<String>) -> EngineFuture<'_, Vec<Vec<f32>>> {
        Box::pin(async move {
            if !self.config.embeddings {
                return Err(InferenceError::EmbeddingsDisabled);
            }
            let _admitted = self.admission.try_admit()?;
            Ok(texts.iter().map(|t| fake_vector(t, self.dim)).collect())
        })
    }

    fn tokenize(&self, text: String) -> EngineFuture<'_, Vec<i32>> {
        Box::pin(async move {
            Ok(std::iter::once(1)
                .chain(text.bytes().map(i32::from))
                .collect())
        })
    }
}

/// A deterministic unit vector for `text`.
fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An [`EngineLoader`] that makes [`FakeEngine`]s with a fixed reply.
#[derive(Debug, Clone, Default)]
pub struct FakeLoader {
    /// Reply of every engine it makes (`None`: the default).
    pub reply: Option<String>,
}

impl EngineLoader for FakeLoader {
    fn load(&self, config: EngineConfig) -> EngineFuture<'_, Arc<dyn InferenceEngine>> {
        Box::pin(async move {
            config.validate()?;
            let mut engine = FakeEngine::new(config);
            if let Some(reply) = &self.reply {
                engine = engine.with_reply(reply.clone());
            }
            Ok(Arc::new(engine) as Arc<dyn InferenceEngine>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(slots: usize, queue: usize) -> EngineConfig {
        EngineConfig {
            slots,
            queue_capacity: queue,
            embeddings: true,
            ..EngineConfig::new("fake.gguf")
        }
    }

    #[tokio::test]
    async fn streams_reply_and_stops() {
        let e = FakeEngine::new(config(1, 1)).with_reply(" Paris.\nQuestion: next");
        let (text, stats) = e
            .generate("Q".into(), GenerateParams::default())
            .expect("admitted")
            .collect()
            .await
            .expect("done");
        assert_eq!(text, " Paris.\nQuestion: next");
        assert_eq!(stats.finish_reason, FinishReason::EndOfText);
        let params = GenerateParams {
            stop: vec!["\nQuestion".into()],
            ..GenerateParams::default()
        };
        let (text, stats) = e
            .generate("Q".into(), params)
            .expect("admitted")
            .collect()
            .await
            .expect("done");
        assert_eq!(text, " Paris.");
        assert_eq!(stats.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn third_call_gets_queue_full() {
        let e = FakeEngine::new(config(1, 1)).with_token_delay(Duration::from_millis(50));
        let a = e
            .generate("a".into(), GenerateParams::default())
            .expect("slot");
        let b = e
            .generate("b".into(), GenerateParams::default())
            .expect("queued");
        let c = e.generate("c".into(), GenerateParams::default());
        assert!(matches!(c, Err(InferenceError::QueueFull { capacity: 1 })));
        let (_, sa) = a.collect().await.expect("a");
        let (_, sb) = b.collect().await.expect("b");
        assert!(sb.queue_ms >= sa.queue_ms, "b waited for a");
    }

    #[tokio::test]
    async fn embeddings_are_deterministic_unit_vectors() {
        let e = FakeEngine::new(config(1, 1)).with_dim(8);
        let v = e
            .embed(vec!["x".into(), "x".into(), "y".into()])
            .await
            .expect("embed");
        assert_eq!(v[0], v[1]);
        assert_ne!(v[0], v[2]);
        let norm: f32 = v[0].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
