//! The inference commands: `xnai generate` (prints text as it streams, then a stats line on
//! stderr), `xnai embed` (vectors as JSON), `xnai plan` (the sizing calculator: memory of a
//! model with a context and slots, and the tmpfs and container sizes for a worker), and the
//! `inference` case of `xnai actor create`, which sizes the actor from the model's header.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use serde_json::json;

use super::args::parse_object_id;
use super::output::print_json;
use xnai_sdk::{
    ActorHandle, ActorOptions, Client, GenerateEvent, GenerateRequest, InferenceParams, ModelSource,
};

/// `xnai generate`: stream a completion from an inference actor.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The inference actor (name or id).
    #[arg(long)]
    pub actor: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Sampling temperature; 0 is greedy (deterministic).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Nucleus sampling threshold (1.0 disables it).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep only the K most likely tokens (0 disables it).
    #[arg(long, default_value_t = 0)]
    pub top_k: i32,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// The prompt (words are joined by spaces).
    #[arg(required = true, allow_hyphen_values = true)]
    pub prompt: Vec<String>,
}

/// `xnai embed`: embed texts with an inference actor.
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// The inference actor (name or id).
    #[arg(long)]
    pub actor: String,
    /// Texts, one vector each.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

/// `xnai plan`: memory estimate of a GGUF model.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The GGUF file.
    pub model: PathBuf,
    /// Context size in tokens, per slot.
    #[arg(long, default_value_t = 2048)]
    pub ctx: u32,
    /// Parallel slots.
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// Batch size.
    #[arg(long, default_value_t = 512)]
    pub batch: u32,
    /// Plan without the per-slot embedding context (an actor created with embeddings=false).
    #[arg(long)]
    pub no_embeddings: bool,
}

/// Runs `xnai generate`.
pub async fn generate(client: Client, a: GenerateArgs, json: bool) -> Result<()> {
    let actor = client.get_actor(&a.actor).await?;
    let request = GenerateRequest {
        prompt: a.prompt.join(" "),
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        top_k: a.top_k,
        seed: a.seed,
        stop: a.stop,
    };
    let mut events = client.generate_stream(&actor, &request).await?;
    let mut text = String::new();
    let mut out = std::io::stdout().lock();
    while let Some(event) = events.next().await {
        match event? {
            GenerateEvent::Token(piece) => {
                if !json {
                    out.write_all(piece.as_bytes())?;
                    out.flush()?;
                }
                text.push_str(&piece);
            }
            GenerateEvent::Done(s) => {
                if json {
                    drop(out);
                    return print_json(&json!({ "text": text, "stats": s }));
                }
                writeln!(out)?;
                out.flush()?;
                eprintln!(
                    "[{} prompt tokens in {:.0} ms ({:.1} tok/s), {} generated in {:.0} ms \
                     ({:.1} tok/s), first token after {:.0} ms, finish: {:?}]",
                    s.prompt_tokens,
                    s.prompt_ms,
                    s.prompt_tokens_per_s(),
                    s.generated_tokens,
                    s.generate_ms,
                    s.generated_tokens_per_s(),
                    s.time_to_first_token_ms,
                    s.finish_reason
                );
                return Ok(());
            }
        }
    }
    bail!("the generation ended without its stats (the worker went away?)")
}

/// Runs `xnai embed`.
pub async fn embed(client: Client, a: EmbedArgs) -> Result<()> {
    let actor = client.get_actor(&a.actor).await?;
    let vectors = client.embed(&actor, &a.texts).await?;
    print_json(&json!(vectors))
}

/// Runs `xnai plan` (no cluster needed).
pub fn plan(a: PlanArgs, json: bool) -> Result<()> {
    let header = xnai_inference::GgufHeader::read_path(&a.model)?;
    let facts = header.model_facts()?;
    let params = InferenceParams {
        ctx: a.ctx,
        slots: a.slots,
        batch: a.batch,
        embeddings: !a.no_embeddings,
        ..InferenceParams::default()
    };
    let plan = xnai_inference::plan(&facts, params.plan_params())?;
    if json {
        print_json(&json!(plan))
    } else {
        println!("{plan}");
        Ok(())
    }
}

/// `xnai actor create inference -- model=PATH|model=@ID|@ID [ctx=N threads=N batch=N slots=N
/// queue=N embeddings=BOOL]`: creates the actor with the memory its model needs.
pub async fn create(
    client: &Client,
    words: &[String],
    options: ActorOptions,
) -> Result<ActorHandle> {
    let mut params = InferenceParams::default();
    let mut model = None;
    for word in words {
        let (key, value) = match word.strip_prefix('@') {
            Some(_) => ("model", word.as_str()),
            None => word
                .split_once('=')
                .ok_or_else(|| anyhow!("inference argument {word:?} is not key=value"))?,
        };
        let num = || format!("inference argument {word:?}: {key} must be a number");
        match key {
            "model" if value.starts_with('@') => {
                model = Some(ModelSource::Object(parse_object_id(value)?));
            }
            "model" => model = Some(ModelSource::Path(PathBuf::from(value))),
            "ctx" => params.ctx = value.parse().with_context(num)?,
            "threads" => params.threads = value.parse().with_context(num)?,
            "batch" => params.batch = value.parse().with_context(num)?,
            "slots" => params.slots = value.parse().with_context(num)?,
            "queue" => params.queue = value.parse().with_context(num)?,
            "embeddings" => {
                params.embeddings = value
                    .parse()
                    .with_context(|| format!("{word:?}: embeddings must be true or false"))?;
            }
            other => bail!(
                "unknown inference argument {other:?}; keys: model, ctx, threads, batch, slots, \
                 queue, embeddings"
            ),
        }
    }
    let model = model.context("inference needs a model: model=PATH.gguf or model=@OBJECT_ID")?;
    Ok(client
        .create_inference_actor(model, params, options)
        .await?)
}
