//! Argument parsing of the `retrieval` actor: constructor `key=value` words and the method
//! arguments (JSON, or words for `search` and `delete`). Every error is a sentence a user can act
//! on; it becomes the actor's application error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use serde::Deserialize;
use xnai_retrieval::chunk::ChunkParams;
use xnai_retrieval::{EmbeddedDoc, IndexParams, SearchMode};

use super::cluster::EmbeddingSource;

/// Constructor keys, in the order the error message lists them.
pub const CONSTRUCTOR_KEYS: &[&str] = &[
    "embedder",
    "model",
    "chunk",
    "overlap",
    "ef_construction",
    "ef_search",
    "replicas",
];

/// A parsed constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct Constructor {
    /// Where embeddings come from.
    pub source: EmbeddingSource,
    /// Index parameters.
    pub params: IndexParams,
    /// Workers each index segment is stored on (default 2).
    pub replicas: usize,
}

fn text(arg: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(arg.to_vec()).map_err(|_| format!("{what} is not UTF-8 text"))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("retrieval: {key} must be a number, got {value:?}"))
}

/// Parses `embedder=NAME` (an inference actor) or `model=PATH` (a GGUF on the worker), and
/// `chunk=WORDS overlap=WORDS ef_construction=N ef_search=N replicas=N`.
pub fn constructor(args: &[Bytes]) -> Result<Constructor, String> {
    let mut source = None;
    let mut params = IndexParams::default();
    let mut replicas = 2usize;
    for arg in args {
        let word = text(arg, "a constructor argument")?;
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "retrieval: argument {word:?} is not key=value; keys: {}",
                CONSTRUCTOR_KEYS.join(", ")
            ));
        };
        let value = value.trim();
        match key.trim() {
            "embedder" | "model" if source.is_some() => {
                return Err("retrieval: give one of embedder=NAME or model=PATH".into());
            }
            "embedder" => source = Some(EmbeddingSource::Actor(value.to_string())),
            "model" => source = Some(EmbeddingSource::Model(PathBuf::from(value))),
            "chunk" => params.chunk.size = number(key, value)?,
            "overlap" => params.chunk.overlap = number(key, value)?,
            "ef_construction" => params.hnsw.ef_construction = number(key, value)?,
            "ef_search" => params.hnsw.ef_search = number(key, value)?,
            "replicas" => replicas = number(key, value)?,
            other => {
                return Err(format!(
                    "retrieval: unknown argument {other:?}; keys: {}",
                    CONSTRUCTOR_KEYS.join(", ")
                ));
            }
        }
    }
    let source = source.ok_or(
        "retrieval: no embeddings: pass embedder=NAME (an inference actor with an embedding \
         model) or model=PATH (a GGUF embedding model on the worker)",
    )?;
    ChunkParams::validate(&params.chunk).map_err(|e| format!("retrieval: {e}"))?;
    if params.hnsw.ef_construction == 0 || params.hnsw.ef_search == 0 || replicas == 0 {
        return Err("retrieval: ef_construction, ef_search and replicas must be at least 1".into());
    }
    Ok(Constructor {
        source,
        params,
        replicas,
    })
}

/// A document to add: id, text, optional metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDoc {
    /// The caller's id (adding it again replaces the document).
    pub id: String,
    /// The whole text; the actor chunks it.
    pub text: String,
    /// `key -> value` metadata returned with hits.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn one_json<'a>(args: &'a [Bytes], method: &str) -> Result<&'a Bytes, String> {
    match args {
        [only] => Ok(only),
        _ => Err(format!("{method}: give one JSON argument")),
    }
}

/// `add`: a JSON array of `{"id", "text", "metadata"?}`.
pub fn add(args: &[Bytes]) -> Result<Vec<NewDoc>, String> {
    serde_json::from_slice(one_json(args, "add")?)
        .map_err(|e| format!("add: bad JSON (want [{{\"id\", \"text\", \"metadata\"}}]): {e}"))
}

/// `add_embedded`: a JSON array of documents with chunks already embedded.
pub fn add_embedded(args: &[Bytes]) -> Result<Vec<EmbeddedDoc>, String> {
    serde_json::from_slice(one_json(args, "add_embedded")?).map_err(|e| {
        format!("add_embedded: bad JSON (want [{{\"id\", \"metadata\", \"chunks\": [{{\"text\", \"vector\"}}]}}]): {e}")
    })
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// How many hits (default 5).
    #[serde(default = "default_k")]
    pub k: usize,
    /// `vector`, `bm25` or `hybrid` (default).
    #[serde(default = "default_mode")]
    pub mode: SearchMode,
}

fn default_k() -> usize {
    5
}

fn default_mode() -> SearchMode {
    SearchMode::Hybrid
}

/// `search`: one JSON object `{"query", "k"?, "mode"?}`, or words where `k=N` and `mode=M`
/// set those and the other words are the query.
pub fn search(args: &[Bytes]) -> Result<SearchRequest, String> {
    if let [only] = args
        && only.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
    {
        return serde_json::from_slice(only).map_err(|e| format!("search: bad JSON request: {e}"));
    }
    let mut req = SearchRequest {
        query: String::new(),
        k: default_k(),
        mode: default_mode(),
    };
    let mut words = Vec::new();
    for arg in args {
        let word = text(arg, "a search argument")?;
        match word.split_once('=') {
            Some(("k", v)) => req.k = number("k", v)?,
            Some(("mode", v)) => req.mode = v.parse().map_err(|e| format!("search: {e}"))?,
            _ => words.push(word),
        }
    }
    req.query = words.join(" ");
    if req.query.trim().is_empty() {
        return Err("search: no query given".into());
    }
    Ok(req)
}

/// `delete`: document ids, as words or one JSON array.
pub fn delete(args: &[Bytes]) -> Result<Vec<String>, String> {
    if let [only] = args
        && only.first() == Some(&b'[')
    {
        return serde_json::from_slice(only).map_err(|e| format!("delete: bad JSON: {e}"));
    }
    if args.is_empty() {
        return Err("delete: give at least one document id".into());
    }
    args.iter().map(|a| text(a, "a document id")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn constructor_keys() {
        let c = constructor(&words(&["embedder=emb", "chunk=50", "overlap=10"])).unwrap();
        assert_eq!(c.source, EmbeddingSource::Actor("emb".into()));
        assert_eq!(
            (c.params.chunk.size, c.params.chunk.overlap, c.replicas),
            (50, 10, 2)
        );
        assert!(
            constructor(&words(&["chunk=50"]))
                .unwrap_err()
                .contains("no embeddings")
        );
        assert!(constructor(&words(&["model=/m", "embedder=e"])).is_err());
        assert!(constructor(&words(&["model=/m", "chunk=5", "overlap=5"])).is_err());
        assert!(
            constructor(&words(&["model=/m", "size=5"]))
                .unwrap_err()
                .contains("keys")
        );
    }

    #[test]
    fn search_json_and_words() {
        let r = search(&words(&[r#"{"query":"q","k":3,"mode":"bm25"}"#])).unwrap();
        assert_eq!((r.query.as_str(), r.k, r.mode), ("q", 3, SearchMode::Bm25));
        let r = search(&words(&["what", "is", "k=2", "mode=vector", "raft"])).unwrap();
        assert_eq!(
            (r.query.as_str(), r.k, r.mode),
            ("what is raft", 2, SearchMode::Vector)
        );
        assert!(search(&words(&["mode=fuzzy", "x"])).is_err());
        assert!(search(&words(&["k=3"])).is_err());
    }

    #[test]
    fn add_and_delete_args() {
        let docs = add(&words(&[
            r#"[{"id":"a","text":"t","metadata":{"source":"a.md"}}]"#,
        ]))
        .unwrap();
        assert_eq!(docs[0].metadata["source"], "a.md");
        assert!(add(&words(&[r#"[{"id":"a"}]"#])).is_err());
        assert_eq!(delete(&words(&["a", "b"])).unwrap(), vec!["a", "b"]);
        assert_eq!(delete(&words(&[r#"["a"]"#])).unwrap(), vec!["a"]);
        assert!(delete(&[]).is_err());
    }
}
