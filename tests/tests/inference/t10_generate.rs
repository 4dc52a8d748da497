//! Generation end to end: an inference actor created from a model path answers "Paris"
//! through the CLI (greedy, 16 tokens), streams its first token well before the last one is
//! generated, and embeds texts into vectors of the model's dimension (640).

use std::time::Instant;

use futures::StreamExt;
use xnai_sdk::{GenerateEvent, GenerateRequest};
use xnai_tests::{ClusterOptions, init_tracing, start_cluster};

use super::{QUESTION, model_path};

#[test]
fn t10_generate_stream_and_embed() -> anyhow::Result<()> {
    init_tracing();
    let model = model_path()?;
    tracing::info!("--- phase: 2-worker cluster, inference actor from a path");
    let c = start_cluster(ClusterOptions::default())?;
    let model_arg = format!("model={}", model.display());
    c.xnai_ok(&[
        "actor",
        "create",
        "inference",
        "--name",
        "llm",
        "--",
        &model_arg,
        "ctx=512",
        "slots=2",
        "threads=2",
    ])?;

    tracing::info!("--- phase: greedy 16 tokens through the CLI answer Paris");
    let out = c.xnai(&["generate", "--actor", "llm", "--max-tokens", "16", QUESTION])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "generate failed: {stderr}");
    assert!(stdout.contains("Paris"), "answer: {stdout:?}");
    assert!(stderr.contains("generated"), "stats line: {stderr}");
    let again = c.xnai_ok(&["generate", "--actor", "llm", "--max-tokens", "16", QUESTION])?;
    assert_eq!(
        again.trim(),
        stdout.trim(),
        "greedy output is deterministic"
    );

    tracing::info!("--- phase: the SDK receives the first token before the last is generated");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = c.client().await?;
        let actor = client.get_actor("llm").await?;
        let mut request = GenerateRequest::new("Once upon a time, in a small village,");
        request.max_tokens = 48;
        let started = Instant::now();
        let mut events = client.generate_stream(&actor, &request).await?;
        let mut first_text = None;
        let mut pieces = 0;
        let mut done = None;
        while let Some(event) = events.next().await {
            match event? {
                GenerateEvent::Token(_) => {
                    pieces += 1;
                    first_text.get_or_insert_with(|| started.elapsed());
                }
                GenerateEvent::Done(stats) => done = Some((started.elapsed(), stats)),
            }
        }
        let (end, stats) = done.ok_or_else(|| anyhow::anyhow!("no stats"))?;
        let first = first_text.ok_or_else(|| anyhow::anyhow!("no text"))?;
        tracing::info!(?first, ?end, pieces, ?stats, "stream timings");
        assert!(stats.generated_tokens >= 8, "{stats:?}");
        assert!(pieces >= 4, "text came in {pieces} pieces");
        // Streaming: the first piece arrived about when generation started, so what remained
        // after it took most of the generation time. Buffered replies would arrive together.
        let after_first_ms = (end - first).as_secs_f64() * 1000.0;
        assert!(
            after_first_ms >= 0.5 * stats.generate_ms && stats.generate_ms > 0.0,
            "first piece {first:?}, end {end:?}, generate_ms {}",
            stats.generate_ms
        );

        tracing::info!("--- phase: embed returns 640-dimensional vectors");
        let out = c.xnai_ok(&["embed", "--actor", "llm", "Paris is in France", "Berlin"])?;
        let vectors: Vec<Vec<f64>> = serde_json::from_str(&out)?;
        assert_eq!(vectors.len(), 2);
        assert!(
            vectors.iter().all(|v| v.len() == 640),
            "dims {:?}",
            vectors.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let sdk = client.embed(&actor, &["Paris".to_string()]).await?;
        assert_eq!(sdk[0].len(), 640);
        let info = client.inference_info(&actor).await?;
        assert_eq!(info.embedding_dim, 640);
        anyhow::Ok(())
    })?;
    Ok(())
}
