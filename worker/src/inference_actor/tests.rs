//! Unit tests of the inference actor host on the fake engine: construction errors, every
//! method, streaming order and the bounded queue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use xnai_inference::fake::FakeEngine;
use xnai_inference::{EngineConfig, EngineFuture, EngineLoader, InferenceEngine};
use xnai_proto::ids::ActorId;
use xnai_proto::pb::actor_stream_chunk::Kind;

use super::InferenceActors;
use crate::error::WorkerError;

/// Makes fake engines that wait `delay` before each token.
struct SlowLoader {
    delay: Duration,
}

impl EngineLoader for SlowLoader {
    fn load(&self, config: EngineConfig) -> EngineFuture<'_, Arc<dyn InferenceEngine>> {
        let delay = self.delay;
        Box::pin(async move {
            config.validate()?;
            Ok(Arc::new(FakeEngine::new(config).with_token_delay(delay))
                as Arc<dyn InferenceEngine>)
        })
    }
}

fn words(w: &[&str]) -> Vec<Bytes> {
    w.iter().map(|s| Bytes::from(s.to_string())).collect()
}

fn host(delay_ms: u64) -> InferenceActors {
    InferenceActors::new(Arc::new(SlowLoader {
        delay: Duration::from_millis(delay_ms),
    }))
}

#[tokio::test]
async fn construction_needs_a_model_and_valid_numbers() {
    let h = host(0);
    let id = ActorId::random();
    let e = h
        .start_with(id, None, &words(&["ctx=512"]))
        .await
        .unwrap_err();
    assert!(e.contains("no model"), "{e}");
    let e = h
        .start_with(id, None, &words(&["model=/m.gguf", "slots=0"]))
        .await
        .unwrap_err();
    assert!(e.contains("slots > 0"), "{e}");
    assert!(h.is_empty());
    h.start_with(id, None, &words(&["model=/m.gguf"]))
        .await
        .unwrap();
    h.start_with(id, None, &words(&["model=/m.gguf"]))
        .await
        .unwrap();
    assert_eq!(h.len(), 1);
}

#[tokio::test]
async fn methods_answer_and_unknown_ones_are_named() {
    let h = host(0);
    let id = ActorId::random();
    h.start_with(id, None, &words(&["model=/m.gguf", "ctx=256"]))
        .await
        .unwrap();
    let text = h
        .call(id, "generate", words(&["Capital?", "max_tokens=4"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, Bytes::from(" Paris."));
    let v = h
        .call(id, "embed", words(&["a", "b"]))
        .await
        .unwrap()
        .unwrap();
    let vectors: Vec<Vec<f32>> = serde_json::from_slice(&v).unwrap();
    assert_eq!((vectors.len(), vectors[0].len()), (2, 16));
    let t = h
        .call(id, "tokenize", words(&["ab"]))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<i32> = serde_json::from_slice(&t).unwrap();
    assert!(!ids.is_empty());
    let i = h.call(id, "info", vec![]).await.unwrap().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&i).unwrap();
    assert_eq!(info["config"]["ctx"], 256);
    let e = h.call(id, "nope", vec![]).await.unwrap().unwrap_err();
    assert_eq!(
        e,
        "inference has no method \"nope\"; methods: generate, embed, tokenize, info"
    );
    assert!(h.stop(&id));
    assert!(matches!(
        h.call(id, "info", vec![]).await,
        Err(WorkerError::ActorNotFound(_))
    ));
}

#[tokio::test]
async fn generate_streams_text_then_stats() {
    let h = host(5);
    let id = ActorId::random();
    h.start_with(id, None, &words(&["model=/m.gguf"]))
        .await
        .unwrap();
    let mut s = h
        .call_stream(id, "generate", words(&[r#"{"prompt":"Q","max_tokens":8}"#]))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(c) = s.next().await {
        kinds.push(c.unwrap().kind.unwrap());
    }
    let text: String = kinds
        .iter()
        .filter_map(|k| match k {
            Kind::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, " Paris.");
    match kinds.last() {
        Some(Kind::Stats(s)) => assert!(s.generated_tokens >= 1 && !s.finish_reason.is_empty()),
        other => panic!("last chunk {other:?}"),
    }
    let mut bad = h.call_stream(id, "generate", vec![]).await.unwrap();
    let only = bad.next().await.unwrap().unwrap().kind.unwrap();
    assert!(
        matches!(only, Kind::Error(ref e) if e.contains("no prompt")),
        "{only:?}"
    );
}

#[tokio::test]
async fn calls_beyond_slots_and_queue_are_refused() {
    let h = host(200);
    let id = ActorId::random();
    h.start_with(id, None, &words(&["model=/m.gguf", "slots=1", "queue=1"]))
        .await
        .unwrap();
    let _running = h.call_stream(id, "generate", words(&["a"])).await.unwrap();
    let _queued = h.call_stream(id, "generate", words(&["b"])).await.unwrap();
    let e = h
        .call_stream(id, "generate", words(&["c"]))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, WorkerError::InferenceBusy { .. }), "{e}");
    let status = tonic::Status::from(e);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("queue full"),
        "{}",
        status.message()
    );
}
