//! Inference actors from the SDK: [`Client::create_inference_actor`] sizes the actor from the
//! model's GGUF header (read from a local file, or streamed from a worker for a model put into
//! the cluster, stopping as soon as the header is parsed) and asks the head for that memory;
//! [`Client::generate_stream`] streams text pieces straight from the hosting worker
//! (`Worker.CallActorStream`), then the counts and timings. No llama.cpp here: only the
//! engine crate's header reader and planner.

use std::io::Cursor;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use xnai_inference::{
    EngineInfo, FinishReason, GenerateEvent, GenerateStats, GgufHeader, InferenceError, MemoryPlan,
    PlanParams,
};
use xnai_proto::pb::{self, actor_stream_chunk::Kind};

use super::Client;
use super::actors::ActorHandle;
use super::error::{Error, Result};
use super::types::{ActorOptions, Arg, ObjectRef};

/// Largest GGUF header read from an object before giving up.
const MAX_HEADER_BYTES: usize = 64 << 20;

/// Where an inference actor's model comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A GGUF file at this path on the worker (and, to size it, on this machine).
    Path(PathBuf),
    /// A GGUF file put into the cluster; the worker pulls it into its arena.
    Object(ObjectRef),
}

/// Engine parameters of an inference actor (the constructor's `key=value` words).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InferenceParams {
    /// Context size in tokens, per slot.
    pub ctx: u32,
    /// CPU threads per evaluation.
    pub threads: i32,
    /// Prompt tokens evaluated per llama.cpp call (also the longest text `embed` takes).
    pub batch: u32,
    /// Requests served at once (one llama.cpp context each).
    pub slots: usize,
    /// Calls that may wait for a slot before RESOURCE_EXHAUSTED.
    pub queue: usize,
    /// Also serve `embed` (one more small context per slot).
    pub embeddings: bool,
}

impl Default for InferenceParams {
    fn default() -> Self {
        Self {
            ctx: 2048,
            threads: 2,
            batch: 512,
            slots: 1,
            queue: 16,
            embeddings: true,
        }
    }
}

impl InferenceParams {
    /// The constructor words the worker parses.
    pub fn words(&self) -> Vec<String> {
        vec![
            format!("ctx={}", self.ctx),
            format!("threads={}", self.threads),
            format!("batch={}", self.batch),
            format!("slots={}", self.slots),
            format!("queue={}", self.queue),
            format!("embeddings={}", self.embeddings),
        ]
    }

    /// What to plan memory for: an embedding context per slot counts as `batch` more tokens.
    pub fn plan_params(&self) -> PlanParams {
        let extra = if self.embeddings { self.batch } else { 0 };
        PlanParams {
            ctx: u64::from(self.ctx) + u64::from(extra),
            slots: self.slots as u64,
            batch: u64::from(self.batch),
        }
    }
}

/// One `generate` call: the prompt, sampling and stopping. Defaults: 128 tokens, greedy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerateRequest {
    /// The prompt text.
    pub prompt: String,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// 0 = greedy (deterministic).
    pub temperature: f32,
    /// Nucleus sampling; 1.0 disables it.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 disables it.
    pub top_k: i32,
    /// Seed of the sampler.
    pub seed: u32,
    /// Generation stops before any of these (not included in the text).
    pub stop: Vec<String>,
}

impl GenerateRequest {
    /// A greedy request for `prompt` with default limits.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            max_tokens: 128,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// A stream of generation events: text pieces, then one `Done` with the worker's timings.
pub type GenerateEvents = Pin<Box<dyn Stream<Item = Result<GenerateEvent>> + Send>>;

fn engine_error(e: InferenceError) -> Error {
    Error::InvalidArgument(e.to_string())
}

/// Parses a GGUF header from the first bytes of a `total`-byte file; `Ok(None)` means more
/// bytes are needed.
pub fn header_from_prefix(prefix: &[u8], total: u64) -> Result<Option<GgufHeader>> {
    match GgufHeader::read(Cursor::new(prefix), total) {
        Ok(h) => Ok(Some(h)),
        Err(InferenceError::Truncated { .. }) if (prefix.len() as u64) < total => Ok(None),
        Err(e) => Err(engine_error(e)),
    }
}

impl Client {
    /// Plans the memory of an inference actor: the model's header, then weights + KV cache +
    /// compute for `params`.
    pub async fn plan_inference(
        &self,
        model: &ModelSource,
        params: &InferenceParams,
    ) -> Result<MemoryPlan> {
        let header = match model {
            ModelSource::Path(path) => GgufHeader::read_path(path).map_err(|e| {
                Error::InvalidArgument(format!(
                    "cannot size the model from its header on this machine: {e} (put the \
                     model into the cluster and pass it as an object, or give \
                     resources.memory_bytes yourself)"
                ))
            })?,
            ModelSource::Object(object) => self.object_header(object).await?,
        };
        let facts = header.model_facts().map_err(engine_error)?;
        xnai_inference::plan(&facts, params.plan_params()).map_err(engine_error)
    }

    /// Streams the first bytes of `object` from a worker holding it until its GGUF header
    /// parses, then drops the stream.
    async fn object_header(&self, object: &ObjectRef) -> Result<GgufHeader> {
        let info = self.object_info(object).await?;
        let location = info.locations.first().ok_or_else(|| {
            Error::InvalidArgument(format!("model object {object} has no copy to read"))
        })?;
        let mut stub = self.inner.workers.stub(&location.address)?;
        let req = pb::FetchObjectRequest {
            object_id: object.id().hex(),
        };
        let mut chunks = stub.fetch_object(req).await?.into_inner();
        let mut prefix = Vec::new();
        let mut total = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            let size = *total.get_or_insert(chunk.total_size);
            prefix.extend_from_slice(&chunk.data);
            if let Some(header) = header_from_prefix(&prefix, size)? {
                return Ok(header);
            }
            if prefix.len() > MAX_HEADER_BYTES {
                break;
            }
        }
        Err(Error::InvalidArgument(format!(
            "model object {object}: no complete GGUF header in its first {} bytes",
            prefix.len()
        )))
    }

    /// Creates an `inference` actor serving `model` with `params`. Unless `options` already
    /// asks for memory, it asks for the planned weights + KV cache + compute, so the head
    /// places it only on a worker with that much free (and refuses it, saying what was needed,
    /// if no worker could ever hold it).
    pub async fn create_inference_actor(
        &self,
        model: ModelSource,
        params: InferenceParams,
        mut options: ActorOptions,
    ) -> Result<ActorHandle> {
        let mut resources = options.resources.take().unwrap_or_default();
        if resources.memory_bytes == 0 {
            resources.memory_bytes = self.plan_inference(&model, &params).await?.total_bytes;
        }
        options.resources = Some(resources);
        let mut args: Vec<Arg> = Vec::new();
        match model {
            ModelSource::Path(path) => {
                args.push(Arg::from(format!("model={}", path.display()).as_str()))
            }
            ModelSource::Object(object) => args.push(Arg::Ref(object)),
        }
        args.extend(params.words().iter().map(|w| Arg::from(w.as_str())));
        self.create_actor("inference", args, options).await
    }

    /// Starts a generation on `actor` and streams its text as the worker produces it, ending
    /// with [`GenerateEvent::Done`]. Dropping the stream cancels the generation.
    pub async fn generate_stream(
        &self,
        actor: &ActorHandle,
        request: &GenerateRequest,
    ) -> Result<GenerateEvents> {
        let info = self.actor_info(&actor.id().hex()).await?;
        if info.address.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "actor {} is not placed yet",
                actor.id()
            )));
        }
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the request: {e}")))?;
        let req = pb::CallActorRequest {
            actor_id: actor.id().hex(),
            method: "generate".into(),
            args: vec![body],
        };
        let mut stub = self.inner.workers.actor_stub(&info.address)?;
        let chunks = stub.call_actor_stream(req).await?.into_inner();
        let events = chunks.map(|chunk| match chunk?.kind {
            Some(Kind::Text(text)) => Ok(GenerateEvent::Token(text)),
            Some(Kind::Stats(s)) => Ok(GenerateEvent::Done(stats_from_pb(&s)?)),
            Some(Kind::Error(e)) => Err(Error::ActorMethod(e)),
            Some(Kind::Value(_)) | None => Err(Error::Protocol(
                "generate stream sent a chunk that is not text or stats".into(),
            )),
        });
        Ok(Box::pin(events))
    }

    /// Generates and waits for the whole text and the timings.
    pub async fn generate(
        &self,
        actor: &ActorHandle,
        request: &GenerateRequest,
    ) -> Result<(String, GenerateStats)> {
        let mut events = self.generate_stream(actor, request).await?;
        let mut text = String::new();
        while let Some(event) = events.next().await {
            match event? {
                GenerateEvent::Token(piece) => text.push_str(&piece),
                GenerateEvent::Done(stats) => return Ok((text, stats)),
            }
        }
        Err(Error::Protocol(
            "generate stream ended without stats".into(),
        ))
    }

    /// Embeds `texts` (L2-normalised vectors of the model's embedding length).
    pub async fn embed(&self, actor: &ActorHandle, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let body = serde_json::to_vec(texts)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the texts: {e}")))?;
        decode(actor.call("embed", vec![Bytes::from(body)]).await?)
    }

    /// The token ids of `text` as the model sees it.
    pub async fn tokenize(&self, actor: &ActorHandle, text: &str) -> Result<Vec<i32>> {
        decode(
            actor
                .call("tokenize", vec![Bytes::copy_from_slice(text.as_bytes())])
                .await?,
        )
    }

    /// The model's metadata and the engine's parameters.
    pub async fn inference_info(&self, actor: &ActorHandle) -> Result<EngineInfo> {
        decode(actor.call("info", Vec::new()).await?)
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: Bytes) -> Result<T> {
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Protocol(format!("inference actor sent bad JSON: {e}")))
}

fn stats_from_pb(s: &pb::GenerateStats) -> Result<GenerateStats> {
    let finish_reason = match s.finish_reason.as_str() {
        "length" => FinishReason::Length,
        "stop" => FinishReason::Stop,
        "end_of_text" => FinishReason::EndOfText,
        "context_full" => FinishReason::ContextFull,
        "cancelled" => FinishReason::Cancelled,
        other => {
            return Err(Error::Protocol(format!("unknown finish reason {other:?}")));
        }
    };
    Ok(GenerateStats {
        prompt_tokens: s.prompt_tokens,
        generated_tokens: s.generated_tokens,
        queue_ms: s.queue_ms,
        prompt_ms: s.prompt_ms,
        generate_ms: s.generate_ms,
        time_to_first_token_ms: s.time_to_first_token_ms,
        finish_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_incrementally_from_a_real_file_prefix() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/gemma-3-270m-q4_k_m.gguf"
        );
        let Ok(bytes) = std::fs::read(path) else {
            return; // The model is fetched by scripts/fetch-models.sh; tests/inference checks it.
        };
        let total = bytes.len() as u64;
        assert!(header_from_prefix(&bytes[..1024], total).unwrap().is_none());
        let mut n = 1 << 20;
        let header = loop {
            if let Some(h) = header_from_prefix(&bytes[..n.min(bytes.len())], total).unwrap() {
                break h;
            }
            n += 1 << 20;
        };
        assert_eq!(header.file_bytes, total);
        assert_eq!(header.model_facts().unwrap().embedding_length, 640);
        assert!(header_from_prefix(b"nope", 4).is_err());
    }

    #[test]
    fn params_words_and_plan() {
        let p = InferenceParams::default();
        assert!(p.words().contains(&"embeddings=true".to_string()));
        assert_eq!(p.plan_params().ctx, 2048 + 512);
    }
}
