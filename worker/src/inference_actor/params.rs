//! Argument parsing of the `inference` actor: constructor `key=value` words into an
//! [`EngineConfig`], and the `generate` / `embed` / `tokenize` method arguments (JSON or
//! words) into engine requests. Every error is a sentence a user can act on; it becomes the
//! actor's application error.

use std::path::PathBuf;

use bytes::Bytes;
use serde::Deserialize;
use xnai_inference::{EngineConfig, GenerateParams};

/// Constructor keys, in the order the error message lists them.
pub const CONSTRUCTOR_KEYS: &[&str] = &[
    "model",
    "ctx",
    "threads",
    "batch",
    "slots",
    "queue",
    "embeddings",
];

/// `generate` parameter keys accepted as `key=value` words.
pub const GENERATE_KEYS: &[&str] = &[
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
];

/// The constructor's text arguments: the engine settings and the model path if given as
/// `model=PATH` (the model may instead come as an object reference argument).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstructorArgs {
    /// `model=PATH`, if given.
    pub model_path: Option<PathBuf>,
    /// Engine settings (its `model_path` is filled in once the model file is known).
    pub config: EngineConfig,
}

fn text(arg: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(arg.to_vec()).map_err(|_| format!("{what} is not UTF-8 text"))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("inference: {key} must be a number, got {value:?}"))
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!(
            "inference: {key} must be true or false, got {other:?}"
        )),
    }
}

/// Parses constructor words `key=value` (see [`CONSTRUCTOR_KEYS`]). Defaults: ctx 2048,
/// threads 2, batch 512, slots 1, queue 16, embeddings true.
pub fn constructor(args: &[Bytes]) -> Result<ConstructorArgs, String> {
    let mut config = EngineConfig::new(PathBuf::new());
    config.embeddings = true;
    let mut model_path = None;
    for arg in args {
        let word = text(arg, "a constructor argument")?;
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "inference: argument {word:?} is not key=value; keys: {}",
                CONSTRUCTOR_KEYS.join(", ")
            ));
        };
        match key.trim() {
            "model" if value.starts_with('@') => {
                return Err(format!(
                    "inference: model={value} must reach the worker as an object reference: \
                     create the actor with the SDK or `xnai actor create inference -- \
                     model={value}`, which pass it as one"
                ));
            }
            "model" => model_path = Some(PathBuf::from(value)),
            "ctx" => config.ctx = number(key, value)?,
            "threads" => config.threads = number(key, value)?,
            "batch" => config.batch = number(key, value)?,
            "slots" => config.slots = number(key, value)?,
            "queue" => config.queue_capacity = number(key, value)?,
            "embeddings" => config.embeddings = boolean(key, value)?,
            other => {
                return Err(format!(
                    "inference: unknown argument {other:?}; keys: {}",
                    CONSTRUCTOR_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(ConstructorArgs { model_path, config })
}

/// `generate` as JSON: the prompt and optional parameters (defaults of [`GenerateParams`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateJson {
    prompt: String,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i32>,
    seed: Option<u32>,
    #[serde(default)]
    stop: Vec<String>,
}

/// Parses `generate` arguments: either one JSON object `{"prompt": ..., "max_tokens": ...}`,
/// or words where `key=value` for a key of [`GENERATE_KEYS`] sets a parameter (`stop` may
/// repeat) and every other word is part of the prompt (joined by single spaces).
pub fn generate(args: &[Bytes]) -> Result<(String, GenerateParams), String> {
    let mut params = GenerateParams::default();
    if let [only] = args
        && only.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
    {
        let j: GenerateJson =
            serde_json::from_slice(only).map_err(|e| format!("generate: bad JSON request: {e}"))?;
        params.max_tokens = j.max_tokens.unwrap_or(params.max_tokens);
        params.temperature = j.temperature.unwrap_or(params.temperature);
        params.top_p = j.top_p.unwrap_or(params.top_p);
        params.top_k = j.top_k.unwrap_or(params.top_k);
        params.seed = j.seed.unwrap_or(params.seed);
        params.stop = j.stop;
        return Ok((j.prompt, params));
    }
    let mut prompt = Vec::new();
    for arg in args {
        let word = text(arg, "a generate argument")?;
        let known = word
            .split_once('=')
            .filter(|(k, _)| GENERATE_KEYS.contains(k));
        match known {
            Some(("max_tokens", v)) => params.max_tokens = number("max_tokens", v)?,
            Some(("temperature", v)) => params.temperature = number("temperature", v)?,
            Some(("top_p", v)) => params.top_p = number("top_p", v)?,
            Some(("top_k", v)) => params.top_k = number("top_k", v)?,
            Some(("seed", v)) => params.seed = number("seed", v)?,
            Some((_, v)) => params.stop.push(v.to_string()),
            None => prompt.push(word),
        }
    }
    if prompt.is_empty() {
        return Err("generate: no prompt given".into());
    }
    Ok((prompt.join(" "), params))
}

/// Parses `embed` arguments: one JSON array of strings, or one text per argument.
pub fn embed(args: &[Bytes]) -> Result<Vec<String>, String> {
    if let [only] = args
        && only.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
    {
        return serde_json::from_slice(only)
            .map_err(|e| format!("embed: bad JSON (want an array of strings): {e}"));
    }
    if args.is_empty() {
        return Err("embed: give at least one text".into());
    }
    args.iter().map(|a| text(a, "an embed text")).collect()
}

/// Parses `tokenize` arguments: the words joined by single spaces.
pub fn tokenize(args: &[Bytes]) -> Result<String, String> {
    let words = args
        .iter()
        .map(|a| text(a, "a tokenize argument"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn constructor_defaults_and_keys() {
        let c = constructor(&words(&["model=/m.gguf", "ctx=512", "slots=2"])).unwrap();
        assert_eq!(c.model_path, Some(PathBuf::from("/m.gguf")));
        assert_eq!(
            (c.config.ctx, c.config.slots, c.config.batch),
            (512, 2, 512)
        );
        assert!(c.config.embeddings);
        let e = constructor(&words(&["size=3"])).unwrap_err();
        assert!(
            e.contains("unknown argument \"size\"") && e.contains("ctx"),
            "{e}"
        );
        let e = constructor(&words(&["ctx=big"])).unwrap_err();
        assert_eq!(e, "inference: ctx must be a number, got \"big\"");
        assert!(constructor(&words(&["model=@abc"])).is_err());
        assert!(constructor(&words(&["nokey"])).is_err());
    }

    #[test]
    fn generate_json_and_words() {
        let (p, g) =
            generate(&words(&[r#"{"prompt":"hi","max_tokens":4,"stop":["\n"]}"#])).unwrap();
        assert_eq!(
            (p.as_str(), g.max_tokens, g.stop.clone()),
            ("hi", 4, vec!["\n".into()])
        );
        assert_eq!(g.temperature, 0.0);
        let (p, g) = generate(&words(&["Say", "a=b", "max_tokens=3", "stop=."])).unwrap();
        assert_eq!(p, "Say a=b");
        assert_eq!((g.max_tokens, g.stop), (3, vec![".".to_string()]));
        assert!(generate(&words(&["max_tokens=x", "hi"])).is_err());
        assert!(generate(&words(&[r#"{"prompt":"hi","bogus":1}"#])).is_err());
        assert!(generate(&[]).is_err());
    }

    #[test]
    fn embed_and_tokenize_args() {
        assert_eq!(embed(&words(&[r#"["a","b"]"#])).unwrap(), vec!["a", "b"]);
        assert_eq!(embed(&words(&["a b", "c"])).unwrap(), vec!["a b", "c"]);
        assert!(embed(&[]).is_err());
        assert_eq!(tokenize(&words(&["a", "b"])).unwrap(), "a b");
    }
}
