//! Generation on the real Gemma 3 270M: greedy answers, streaming order and timing, stop
//! strings, prompts longer than the context, and the bounded queue.

mod common;

use std::time::Instant;

use common::{FRANCE, config, engine, greedy};
use xnai_inference::{
    EngineConfig, FinishReason, GenerateEvent, GenerateParams, InferenceEngine, InferenceError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_greedy_france_answers_paris() {
    tracing::info!("--- greedy 16 tokens");
    let engine = engine(config()).await;
    let text = greedy(engine.as_ref(), FRANCE, 16, &[]).await;
    assert!(text.contains("Paris"), "answer was {text:?}");
    tracing::info!("--- greedy is deterministic");
    assert_eq!(greedy(engine.as_ref(), FRANCE, 16, &[]).await, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_tokens_stream_before_the_last_is_made() {
    let engine = engine(config()).await;
    tracing::info!("--- stream 32 tokens, timestamping each event");
    let params = GenerateParams {
        max_tokens: 32,
        ..Default::default()
    };
    let start = Instant::now();
    let mut stream = engine.generate(FRANCE.into(), params).expect("admitted");
    let mut token_times = Vec::new();
    let stats = loop {
        match stream
            .next()
            .await
            .expect("stream ends with Done")
            .expect("no error")
        {
            GenerateEvent::Token(_) => token_times.push(start.elapsed().as_secs_f64() * 1000.0),
            GenerateEvent::Done(stats) => break stats,
        }
    };
    tracing::info!(
        ?stats,
        events = token_times.len(),
        "--- check order and timing"
    );
    assert!(
        token_times.len() > 1,
        "tokens arrive one by one, got {}",
        token_times.len()
    );
    assert!(stats.generated_tokens <= 32);
    // The last token is produced at queue + prompt + generation time after the call; the first
    // token event must have been received well before that.
    let last_produced_ms = stats.queue_ms + stats.prompt_ms + stats.generate_ms;
    assert!(
        token_times[0] < last_produced_ms,
        "first token received at {:.1} ms, last produced at {last_produced_ms:.1} ms",
        token_times[0]
    );
    assert!(stats.time_to_first_token_ms <= token_times[0] + 1.0);
    assert!(stats.prompt_tokens > 5 && stats.generate_ms > 0.0 && stats.prompt_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t12_stop_strings_cut_the_output() {
    let engine = engine(config()).await;
    let full = greedy(engine.as_ref(), FRANCE, 16, &[]).await;
    let at = full.find("Paris").expect("Paris in the answer");
    tracing::info!(%full, "--- stop at \"Paris\": nothing from it on");
    let params = GenerateParams {
        max_tokens: 16,
        stop: vec!["Paris".into()],
        ..Default::default()
    };
    let (text, stats) = engine
        .generate(FRANCE.into(), params)
        .expect("admitted")
        .collect()
        .await
        .expect("done");
    assert_eq!(text, full[..at]);
    assert_eq!(stats.finish_reason, FinishReason::Stop);
    tracing::info!("--- a stop string starting inside a token");
    assert_eq!(
        greedy(engine.as_ref(), FRANCE, 16, &["aris"]).await,
        full[..at + 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t13_prompt_longer_than_context_is_an_error() {
    let engine = engine(EngineConfig {
        ctx: 64,
        ..config()
    })
    .await;
    let prompt = "the river runs past the old mill ".repeat(40);
    let mut stream = engine
        .generate(prompt, GenerateParams::default())
        .expect("admitted");
    match stream.next().await {
        Some(Err(InferenceError::PromptTooLong { prompt_tokens, ctx })) => {
            assert!(
                prompt_tokens >= 64 && ctx == 64,
                "{prompt_tokens} tokens, ctx {ctx}"
            );
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    tracing::info!("--- the engine still serves after the error");
    assert!(!greedy(engine.as_ref(), FRANCE, 4, &[]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t14_third_call_on_one_slot_and_queue_of_one_is_refused() {
    let engine = engine(EngineConfig {
        slots: 1,
        queue_capacity: 1,
        ..config()
    })
    .await;
    let params = GenerateParams {
        max_tokens: 48,
        ..Default::default()
    };
    let first = engine
        .generate(FRANCE.into(), params.clone())
        .expect("runs");
    let second = engine
        .generate(FRANCE.into(), params.clone())
        .expect("waits");
    match engine.generate(FRANCE.into(), params) {
        Err(InferenceError::QueueFull { capacity }) => assert_eq!(capacity, 1),
        Err(other) => panic!("expected QueueFull, got {other}"),
        Ok(_) => panic!("expected QueueFull, got a stream"),
    }
    tracing::info!("--- the admitted calls complete in order");
    let (a, sa) = first.collect().await.expect("first");
    let (b, sb) = second.collect().await.expect("second");
    assert_eq!(a, b, "greedy");
    assert!(sb.queue_ms > sa.queue_ms, "the second waited for the first");
    assert!(
        engine
            .generate(
                FRANCE.into(),
                GenerateParams {
                    max_tokens: 1,
                    ..Default::default()
                }
            )
            .is_ok()
    );
}
