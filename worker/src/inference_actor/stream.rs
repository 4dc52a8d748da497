//! `CallActorStream` replies: engine events to `ActorStreamChunk`s (text pieces, then the
//! stats), and the one-chunk reply of methods that do not stream. This and `crate::convert`
//! are where the inference actor meets protobuf types.

use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use xnai_inference::{FinishReason, GenerateEvent, GenerateStats, GenerateStream};
use xnai_proto::pb;
use xnai_proto::pb::actor_stream_chunk::Kind;

pub use crate::hosts::{ChunkStream, single};

fn chunk(kind: Kind) -> Result<pb::ActorStreamChunk, Status> {
    Ok(pb::ActorStreamChunk { kind: Some(kind) })
}

/// A generation as chunks: each text piece as it arrives, then the stats (or the error) as
/// the last chunk. Dropping the stream drops the engine's receiver, which cancels the
/// generation at its next token.
pub fn generation(events: GenerateStream) -> ChunkStream {
    let stream = ReceiverStream::new(events.into_inner()).map(|event| match event {
        Ok(GenerateEvent::Token(text)) => chunk(Kind::Text(text)),
        Ok(GenerateEvent::Done(stats)) => chunk(Kind::Stats(stats_to_pb(&stats))),
        Err(e) => chunk(Kind::Error(format!("inference: {e}"))),
    });
    Box::pin(stream)
}

/// The wire form of a finish reason (documented in worker.proto).
pub fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::Stop => "stop",
        FinishReason::EndOfText => "end_of_text",
        FinishReason::ContextFull => "context_full",
        FinishReason::Cancelled => "cancelled",
    }
}

/// Engine stats to their wire form.
pub fn stats_to_pb(s: &GenerateStats) -> pb::GenerateStats {
    pb::GenerateStats {
        prompt_tokens: s.prompt_tokens,
        generated_tokens: s.generated_tokens,
        queue_ms: s.queue_ms,
        prompt_ms: s.prompt_ms,
        generate_ms: s.generate_ms,
        time_to_first_token_ms: s.time_to_first_token_ms,
        finish_reason: finish_reason_name(s.finish_reason).to_string(),
    }
}
