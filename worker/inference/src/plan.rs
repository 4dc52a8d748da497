//! Memory planning from a GGUF header alone: what a model with a given context and number of
//! parallel slots needs (weights + KV cache + compute buffers), and the tmpfs and container
//! memory sizes to give a worker. The head places inference actors by `total_bytes`.
//!
//! Formulas (all per engine; each slot owns one llama.cpp context of `ctx` tokens):
//! - weights = the tensor data bytes of the file (llama.cpp maps them once per process);
//! - KV cache = n_layer × (ctx × slots) × n_head_kv × (key_length + value_length) × 2 bytes
//!   (f16 keys and values; llama.cpp keeps full-size caches for sliding-window layers too);
//! - compute = slots × 4 bytes × (batch × (n_vocab + 4·n_embd + n_ff + n_head·ctx) + n_vocab):
//!   the f32 logits of one batch, its activations and attention scores, plus one row of logits
//!   output. Checked against llama.cpp: Gemma 3 270M at ctx 512, batch 128 reports a 129.8 MiB
//!   compute buffer + 1 MiB output buffer; the formula gives 132.3 MiB. The KV formula matches
//!   llama.cpp's 9.0 MiB exactly (it keeps a full-size cache for sliding-window layers);
//! - an engine with embeddings on adds, per slot, a context of `batch` tokens: plan it with
//!   `ctx + batch` (a slight overestimate);
//! - container = weights + KV + compute + [`WORKER_OVERHEAD_BYTES`], × 1.1, rounded up to
//!   64 MiB; tmpfs = file size × 1.05 + 16 MiB, rounded up to 64 MiB (the model as an object).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{InferenceError, Result};
use crate::gguf::ModelFacts;

/// Memory of the worker process itself (runtime, gRPC, buffers), beyond the model.
pub const WORKER_OVERHEAD_BYTES: u64 = 128 * MIB;
const MIB: u64 = 1024 * 1024;
const ROUND: u64 = 64 * MIB;

/// The parameters that change an engine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanParams {
    /// Context size in tokens, per slot.
    pub ctx: u64,
    /// Parallel slots (one context each).
    pub slots: u64,
    /// Batch size (tokens evaluated per llama.cpp call).
    pub batch: u64,
}

impl Default for PlanParams {
    fn default() -> Self {
        Self {
            ctx: 2048,
            slots: 1,
            batch: 512,
        }
    }
}

/// The memory estimate for one model with [`PlanParams`], and the sizes to give a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// The model's facts from its header.
    pub model: ModelFacts,
    /// The parameters planned for.
    pub params: PlanParams,
    /// Weights (tensor data).
    pub weights_bytes: u64,
    /// KV cache of all slots.
    pub kv_cache_bytes: u64,
    /// Compute and output buffers of all slots.
    pub compute_bytes: u64,
    /// weights + KV + compute: what an inference actor asks the head for.
    pub total_bytes: u64,
    /// Recommended tmpfs (object arena) size to hold the model file as an object.
    pub tmpfs_bytes: u64,
    /// Recommended container memory limit for a worker serving this engine.
    pub container_bytes: u64,
}

/// Plans memory for `model` with `params`.
pub fn plan(model: &ModelFacts, params: PlanParams) -> Result<MemoryPlan> {
    if params.ctx == 0 || params.slots == 0 || params.batch == 0 {
        return Err(InferenceError::InvalidParameter(format!(
            "ctx, slots and batch must be positive (got ctx {}, slots {}, batch {})",
            params.ctx, params.slots, params.batch
        )));
    }
    let overflow = || InferenceError::InvalidParameter("memory estimate overflows u64".into());
    let kv_per_token = model
        .block_count
        .checked_mul(model.head_count_kv)
        .and_then(|v| v.checked_mul(model.key_length + model.value_length))
        .and_then(|v| v.checked_mul(2))
        .ok_or_else(overflow)?;
    let kv_cache_bytes = kv_per_token
        .checked_mul(params.ctx)
        .and_then(|v| v.checked_mul(params.slots))
        .ok_or_else(overflow)?;
    let batch = params.batch.min(params.ctx);
    let width = model
        .vocab_size
        .saturating_add(model.embedding_length.saturating_mul(4))
        .saturating_add(model.feed_forward_length.unwrap_or(0))
        .saturating_add(model.head_count.saturating_mul(params.ctx));
    let compute_bytes = batch
        .checked_mul(width)
        .and_then(|v| v.checked_add(model.vocab_size))
        .and_then(|v| v.checked_mul(4))
        .and_then(|v| v.checked_mul(params.slots))
        .ok_or_else(overflow)?;
    let weights_bytes = model.tensor_data_bytes;
    let total_bytes = weights_bytes
        .checked_add(kv_cache_bytes)
        .and_then(|v| v.checked_add(compute_bytes))
        .ok_or_else(overflow)?;
    let container_bytes = round_up(
        total_bytes
            .saturating_add(WORKER_OVERHEAD_BYTES)
            .saturating_mul(11)
            / 10,
    );
    let tmpfs_bytes =
        round_up((model.file_bytes.saturating_mul(105) / 100).saturating_add(16 * MIB));
    Ok(MemoryPlan {
        model: model.clone(),
        params,
        weights_bytes,
        kv_cache_bytes,
        compute_bytes,
        total_bytes,
        tmpfs_bytes,
        container_bytes,
    })
}

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(ROUND).saturating_mul(ROUND)
}

/// Formats bytes as MiB or GiB with one decimal.
pub fn human_bytes(bytes: u64) -> String {
    let mib = bytes as f64 / MIB as f64;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

impl fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.model;
        writeln!(
            f,
            "model: {} ({}), {} layers, embedding {}, {} heads ({} KV), vocab {}, trained ctx {}",
            m.name.as_deref().unwrap_or("unnamed"),
            m.architecture,
            m.block_count,
            m.embedding_length,
            m.head_count,
            m.head_count_kv,
            m.vocab_size,
            m.context_length
        )?;
        writeln!(
            f,
            "quantization: {}, file {}",
            m.file_type.as_deref().unwrap_or("unknown"),
            human_bytes(m.file_bytes)
        )?;
        writeln!(
            f,
            "plan for ctx {} x {} slots, batch {}:",
            self.params.ctx, self.params.slots, self.params.batch
        )?;
        writeln!(f, "  weights     {:>12}", human_bytes(self.weights_bytes))?;
        writeln!(f, "  KV cache    {:>12}", human_bytes(self.kv_cache_bytes))?;
        writeln!(f, "  compute     {:>12}", human_bytes(self.compute_bytes))?;
        writeln!(f, "  total       {:>12}", human_bytes(self.total_bytes))?;
        writeln!(
            f,
            "recommended tmpfs (model as an object): {}",
            human_bytes(self.tmpfs_bytes)
        )?;
        write!(
            f,
            "recommended container memory: {}",
            human_bytes(self.container_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemma_like() -> ModelFacts {
        ModelFacts {
            architecture: "gemma3".into(),
            name: Some("Gemma 3 270m".into()),
            context_length: 32768,
            embedding_length: 640,
            block_count: 18,
            head_count: 4,
            head_count_kv: 1,
            key_length: 256,
            value_length: 256,
            feed_forward_length: Some(2048),
            vocab_size: 262_144,
            file_type: Some("Q4_K_M".into()),
            pooling_type: None,
            sliding_window: Some(512),
            tensor_count: 236,
            tensor_data_bytes: 240 * MIB,
            file_bytes: 253_113_024,
        }
    }

    #[test]
    fn kv_cache_follows_the_formula() {
        let p = plan(
            &gemma_like(),
            PlanParams {
                ctx: 2048,
                slots: 2,
                batch: 512,
            },
        )
        .expect("plan");
        assert_eq!(p.kv_cache_bytes, 18 * 4096 * 512 * 2);
        assert_eq!(
            p.total_bytes,
            p.weights_bytes + p.kv_cache_bytes + p.compute_bytes
        );
        assert!(p.container_bytes >= p.total_bytes + WORKER_OVERHEAD_BYTES);
        assert!(p.container_bytes.is_multiple_of(ROUND));
        assert!(p.tmpfs_bytes > p.model.file_bytes && p.tmpfs_bytes.is_multiple_of(ROUND));
    }

    #[test]
    fn more_slots_and_context_cost_more() {
        let one = plan(&gemma_like(), PlanParams::default()).expect("plan");
        let two = plan(
            &gemma_like(),
            PlanParams {
                slots: 2,
                ..PlanParams::default()
            },
        )
        .expect("plan");
        let long = plan(
            &gemma_like(),
            PlanParams {
                ctx: 8192,
                ..PlanParams::default()
            },
        )
        .expect("plan");
        assert_eq!(two.kv_cache_bytes, 2 * one.kv_cache_bytes);
        assert!(two.compute_bytes > one.compute_bytes);
        assert_eq!(long.kv_cache_bytes, 4 * one.kv_cache_bytes);
        assert_eq!(two.weights_bytes, one.weights_bytes, "weights are shared");
    }

    #[test]
    fn zero_parameters_are_rejected() {
        let err = plan(
            &gemma_like(),
            PlanParams {
                slots: 0,
                ..PlanParams::default()
            },
        );
        assert!(matches!(err, Err(InferenceError::InvalidParameter(_))));
    }

    #[test]
    fn display_names_every_figure() {
        let text = plan(&gemma_like(), PlanParams::default())
            .expect("plan")
            .to_string();
        for word in [
            "weights",
            "KV cache",
            "compute",
            "tmpfs",
            "container",
            "Q4_K_M",
        ] {
            assert!(text.contains(word), "{word} missing in {text}");
        }
        let json =
            serde_json::to_string(&plan(&gemma_like(), PlanParams::default()).expect("plan"));
        assert!(json.is_ok());
    }
}
