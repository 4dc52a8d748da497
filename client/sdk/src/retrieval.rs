//! Retrieval actors from the SDK: add documents, search, stats, and [`Client::ask`] (retrieve,
//! then generate an answer from numbered passages and cite them). The prompt and citation
//! rules are pure functions ([`rag_prompt`], [`cited`]) so they are tested without a cluster.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
pub use xnai_retrieval::{ChunkHit, EmbeddedChunk, EmbeddedDoc, SearchMode};

use super::Client;
use super::actors::ActorHandle;
use super::error::{Error, Result};
use super::inference::GenerateRequest;

/// A document for a retrieval actor's `add`: the actor chunks and embeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDocument {
    /// Your id; adding it again replaces the document.
    pub id: String,
    /// The text.
    pub text: String,
    /// `key -> value` metadata returned with hits (e.g. `source`).
    pub metadata: BTreeMap<String, String>,
}

/// What an add stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Added {
    /// Documents added or replaced.
    pub documents: usize,
    /// Chunks indexed.
    pub chunks: usize,
}

/// An answer from [`Client::ask`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The generated answer (one line, trimmed).
    pub answer: String,
    /// The passages given to the model, numbered from 1 in this order.
    pub passages: Vec<ChunkHit>,
    /// Numbers (1-based) of the passages the answer cites or is supported by.
    pub cited: Vec<usize>,
    /// The prompt sent to the generator.
    pub prompt: String,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: Bytes) -> Result<T> {
    serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(format!("bad reply: {e}")))
}

fn body<T: Serialize>(value: &T) -> Result<Vec<Bytes>> {
    serde_json::to_vec(value)
        .map(|b| vec![Bytes::from(b)])
        .map_err(|e| Error::InvalidArgument(format!("cannot encode the request: {e}")))
}

impl Client {
    /// Adds documents: the actor chunks them and embeds the chunks through its embedder.
    pub async fn add_documents(&self, actor: &ActorHandle, docs: &[NewDocument]) -> Result<Added> {
        decode(actor.call("add", body(&docs)?).await?)
    }

    /// Adds documents whose chunks are already embedded (by `embed` tasks).
    pub async fn add_embedded(&self, actor: &ActorHandle, docs: &[EmbeddedDoc]) -> Result<Added> {
        decode(actor.call("add_embedded", body(&docs)?).await?)
    }

    /// The `k` best chunks for `query`.
    pub async fn search(
        &self,
        actor: &ActorHandle,
        query: &str,
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<ChunkHit>> {
        let req = serde_json::json!({ "query": query, "k": k, "mode": mode });
        decode(actor.call("search", body(&req)?).await?)
    }

    /// Deletes documents by id.
    pub async fn delete_documents(&self, actor: &ActorHandle, ids: &[String]) -> Result<()> {
        actor.call("delete", body(&ids)?).await.map(|_| ())
    }

    /// The actor's counts, parameters and embedder (JSON).
    pub async fn retrieval_stats(&self, actor: &ActorHandle) -> Result<serde_json::Value> {
        decode(actor.call("stats", Vec::new()).await?)
    }

    /// Retrieves the `k` best passages (hybrid), asks `generator` (greedy, one line of at
    /// most `max_tokens`) in Question/Answer form over the numbered passages, and returns the
    /// answer with the passages it cites.
    pub async fn ask(
        &self,
        retrieval: &ActorHandle,
        generator: &ActorHandle,
        question: &str,
        k: usize,
        max_tokens: u32,
    ) -> Result<Answer> {
        let passages = self
            .search(retrieval, question, k, SearchMode::Hybrid)
            .await?;
        let prompt = rag_prompt(question, &passages);
        let mut request = GenerateRequest::new(prompt.clone());
        request.max_tokens = max_tokens;
        request.stop = vec!["\n".into()];
        let (text, _) = self.generate(generator, &request).await?;
        let answer = text.trim().to_string();
        let cited = cited(&answer, question, &passages);
        Ok(Answer {
            answer,
            passages,
            cited,
            prompt,
        })
    }
}

/// The prompt: numbered passages, then `Question: ...` / `Answer:` (the form a base model
/// completes; Gemma 3 270M is one).
pub fn rag_prompt(question: &str, passages: &[ChunkHit]) -> String {
    let mut p = String::from(
        "Answer the question with a short answer taken from the passages below. \
         Cite the passage number in brackets.\n\n",
    );
    for (i, h) in passages.iter().enumerate() {
        let source = h.metadata.get("source").unwrap_or(&h.doc_id);
        p.push_str(&format!("[{}] ({source}) {}\n\n", i + 1, h.text));
    }
    p.push_str(&format!("Question: {}\nAnswer:", question.trim()));
    p
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
}

/// Which passages (1-based) an answer cites: the `[n]` it names, else those containing a
/// word of the answer (3+ letters or digits) that the question does not contain, else none.
pub fn cited(answer: &str, question: &str, passages: &[ChunkHit]) -> Vec<usize> {
    let mut named: Vec<usize> = answer
        .split('[')
        .skip(1)
        .filter_map(|rest| rest.split(']').next()?.trim().parse().ok())
        .filter(|n| (1..=passages.len()).contains(n))
        .collect();
    named.dedup();
    if !named.is_empty() {
        return named;
    }
    let asked: std::collections::HashSet<String> = words(question).collect();
    let new_words: Vec<String> = words(answer).filter(|w| !asked.contains(w)).collect();
    if new_words.is_empty() {
        return Vec::new();
    }
    passages
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            let text: std::collections::HashSet<String> = words(&h.text).collect();
            new_words.iter().any(|w| text.contains(w))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, text: &str) -> ChunkHit {
        ChunkHit {
            doc_id: doc.into(),
            chunk: 0,
            text: text.into(),
            score: 1.0,
            metadata: [("source".to_string(), format!("{doc}.md"))].into(),
        }
    }

    #[test]
    fn prompt_numbers_passages_and_ends_with_answer() {
        let p = rag_prompt(
            "Who?",
            &[hit("a", "Alice did it."), hit("b", "Bob watched.")],
        );
        assert!(p.contains("[1] (a.md) Alice did it."));
        assert!(p.contains("[2] (b.md) Bob watched."));
        assert!(p.ends_with("Question: Who?\nAnswer:"));
    }

    #[test]
    fn citations_named_or_supported() {
        let passages = [
            hit("a", "The vault code is 7291."),
            hit("b", "Cats sleep a lot."),
        ];
        assert_eq!(
            cited("7291 [1]", "What is the vault code?", &passages),
            vec![1]
        );
        assert_eq!(
            cited("It is 7291.", "What is the vault code?", &passages),
            vec![1]
        );
        assert_eq!(cited("[2] and [9]", "q", &passages), vec![2]);
        assert!(cited("The vault code", "What is the vault code?", &passages).is_empty());
    }
}
