//! One slot: an OS thread that owns a llama.cpp context (and an embedding context when
//! embeddings are on) and serves jobs from the engine's shared FIFO channel: prompt
//! evaluation in batches, sampling, streaming text through the UTF-8 assembler and the stop
//! filter, and pooled embeddings.

use std::num::NonZeroU32;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use tokio::sync::{mpsc, oneshot};

use super::backend;
use crate::engine::{EngineConfig, FinishReason, GenerateEvent, GenerateParams, GenerateStats};
use crate::error::{InferenceError, Result};
use crate::queue::Admitted;
use crate::stop::{StopFilter, StopOutcome, Utf8Assembler};

/// llama.cpp mutates the model while creating a context: create one at a time.
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

/// A call waiting for a slot.
pub enum Job {
    /// Stream a generation into `tx`.
    Generate {
        prompt: String,
        params: GenerateParams,
        tx: mpsc::Sender<Result<GenerateEvent>>,
        called: Instant,
        _admitted: Admitted,
    },
    /// Embed texts and answer on `reply`.
    Embed {
        texts: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
        _admitted: Admitted,
    },
}

/// What a slot thread starts from.
pub struct SlotSetup {
    pub index: usize,
    pub model: Arc<LlamaModel>,
    pub config: EngineConfig,
    pub pooling: LlamaPoolingType,
    pub jobs: Arc<Mutex<std_mpsc::Receiver<Job>>>,
    pub ready: std_mpsc::Sender<Result<()>>,
}

fn new_context<'m>(model: &'m LlamaModel, params: LlamaContextParams) -> Result<LlamaContext<'m>> {
    let backend = backend()?;
    let _one_at_a_time = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
    model
        .new_context(backend, params)
        .map_err(|e| InferenceError::Load(format!("cannot create llama.cpp context: {e}")))
}

/// The slot thread's body: create contexts, report readiness, serve jobs until the engine
/// drops its sender.
pub fn run(setup: SlotSetup) {
    let SlotSetup {
        index,
        model,
        config,
        pooling,
        jobs,
        ready,
    } = setup;
    let base = LlamaContextParams::default()
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads)
        .with_n_batch(config.batch)
        .with_n_ubatch(config.batch)
        .with_n_seq_max(1);
    let generation = new_context(&model, base.clone().with_n_ctx(NonZeroU32::new(config.ctx)));
    let mut generation = match generation {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Embedding contexts need room for one batch only: texts longer than a batch are refused.
    let mut embedding = if config.embeddings {
        let params = base
            .with_n_ctx(NonZeroU32::new(config.batch))
            .with_embeddings(true)
            .with_pooling_type(pooling);
        match new_context(&model, params) {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    } else {
        None
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        match job {
            Job::Generate {
                prompt,
                params,
                tx,
                called,
                _admitted,
            } => {
                let queue_ms = ms(called.elapsed());
                let result = generate(
                    &mut generation,
                    &model,
                    &config,
                    &prompt,
                    &params,
                    &tx,
                    called,
                );
                let event = result.map(|mut stats| {
                    stats.queue_ms = queue_ms;
                    GenerateEvent::Done(stats)
                });
                let _ = tx.blocking_send(event);
            }
            Job::Embed {
                texts,
                reply,
                _admitted,
            } => {
                let result = match embedding.as_mut() {
                    Some(ctx) => embed(ctx, &model, config.batch as usize, &texts),
                    None => Err(InferenceError::EmbeddingsDisabled),
                };
                let _ = reply.send(result);
            }
        }
    }
    tracing::debug!(slot = index, "slot thread stopped");
}

fn decode_err(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Decode(e.to_string())
}

fn sampler(params: &GenerateParams) -> LlamaSampler {
    if params.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    let mut chain = Vec::new();
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k));
    }
    if params.top_p > 0.0 && params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    chain.push(LlamaSampler::dist(params.seed));
    LlamaSampler::chain_simple(chain)
}

/// Evaluates the prompt and streams tokens into `tx`; returns the stats for `Done`.
fn generate(
    ctx: &mut LlamaContext<'_>,
    model: &LlamaModel,
    config: &EngineConfig,
    prompt: &str,
    params: &GenerateParams,
    tx: &mpsc::Sender<Result<GenerateEvent>>,
    called: Instant,
) -> Result<GenerateStats> {
    let vocab = model.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    let n_ctx = ctx.n_ctx() as usize;
    if tokens.is_empty() {
        return Err(InferenceError::InvalidParameter("empty prompt".into()));
    }
    if tokens.len() >= n_ctx {
        return Err(InferenceError::PromptTooLong {
            prompt_tokens: tokens.len(),
            ctx: config.ctx,
        });
    }
    ctx.clear_kv_cache();
    let n_batch = (config.batch as usize).max(1);
    let mut batch = LlamaBatch::new(n_batch, 1);
    let prompt_start = Instant::now();
    for (c, chunk) in tokens.chunks(n_batch).enumerate() {
        batch.clear();
        for (j, token) in chunk.iter().enumerate() {
            let pos = c * n_batch + j;
            batch
                .add(*token, pos as i32, &[0], pos + 1 == tokens.len())
                .map_err(decode_err)?;
        }
        ctx.decode(&mut batch).map_err(decode_err)?;
    }
    let prompt_ms = ms(prompt_start.elapsed());
    let mut sampler = sampler(params);
    let mut utf8 = Utf8Assembler::default();
    let mut filter = StopFilter::new(&params.stop);
    let mut position = tokens.len();
    let mut generated = 0u32;
    let mut first_token_ms = None;
    let mut gen_start = None;
    let mut gen_elapsed = Duration::ZERO;
    let send = |text: String, first: &mut Option<f64>| -> bool {
        if text.is_empty() {
            return true;
        }
        first.get_or_insert_with(|| ms(called.elapsed()));
        tx.blocking_send(Ok(GenerateEvent::Token(text))).is_ok()
    };
    let finish = loop {
        if generated >= params.max_tokens {
            break FinishReason::Length;
        }
        if position >= n_ctx {
            break FinishReason::ContextFull;
        }
        let token = sampler.sample(ctx, batch.n_tokens() - 1);
        let started = *gen_start.get_or_insert_with(Instant::now);
        if vocab.is_eog(token) {
            break FinishReason::EndOfText;
        }
        generated += 1;
        let text = utf8.push(&vocab.token_to_piece(token, false, None));
        gen_elapsed = started.elapsed();
        match filter.push(&text) {
            StopOutcome::Stopped(text) => {
                send(text, &mut first_token_ms);
                break FinishReason::Stop;
            }
            StopOutcome::Continue(text) => {
                if !send(text, &mut first_token_ms) {
                    break FinishReason::Cancelled;
                }
            }
        }
        if generated >= params.max_tokens {
            break FinishReason::Length;
        }
        batch.clear();
        batch
            .add(token, position as i32, &[0], true)
            .map_err(decode_err)?;
        position += 1;
        ctx.decode(&mut batch).map_err(decode_err)?;
    };
    if !matches!(finish, FinishReason::Stop | FinishReason::Cancelled) {
        // Flush what was held back: an incomplete character, a partial stop string.
        let tail = match filter.push(&utf8.finish()) {
            StopOutcome::Stopped(t) => t,
            StopOutcome::Continue(t) => t + &filter.finish(),
        };
        send(tail, &mut first_token_ms);
    }
    Ok(GenerateStats {
        prompt_tokens: tokens.len() as u32,
        generated_tokens: generated,
        queue_ms: 0.0,
        prompt_ms,
        generate_ms: gen_elapsed.as_secs_f64() * 1000.0,
        time_to_first_token_ms: first_token_ms.unwrap_or_else(|| ms(called.elapsed())),
        finish_reason: finish,
    })
}

/// Embeds each text on the embedding context; vectors L2-normalised.
fn embed(
    ctx: &mut LlamaContext<'_>,
    model: &LlamaModel,
    limit: usize,
    texts: &[String],
) -> Result<Vec<Vec<f32>>> {
    let vocab = model.vocab();
    let mut batch = LlamaBatch::new(limit.max(1), 1);
    let mut out = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let tokens = vocab.tokenize(text.as_bytes(), true, true);
        if tokens.len() > limit {
            return Err(InferenceError::TextTooLong {
                index,
                tokens: tokens.len(),
                limit,
            });
        }
        if tokens.is_empty() {
            return Err(InferenceError::InvalidParameter(format!(
                "text {index} is empty"
            )));
        }
        ctx.clear_kv_cache();
        batch.clear();
        batch.add_sequence(&tokens, 0, true).map_err(decode_err)?;
        ctx.decode(&mut batch).map_err(decode_err)?;
        let mut vector = ctx.embeddings_seq_ith(0).map_err(decode_err)?.to_vec();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        }
        out.push(vector);
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
