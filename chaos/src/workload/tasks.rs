//! Task chains: `fill SIZE SEED`, then `digest @FILL`, then a read of the digest. Submissions
//! go through [`crate::raw`] with our own request ids, so retries are visible in the history.

use std::time::Duration;

use xnai_proto::ids::ObjectId;
use xnai_proto::pb;
use xnai_sdk::ObjectRef;

use super::{Ctx, OP_BUDGET};
use crate::history::{Expect, OpValue, Outcome};
use crate::raw::Reply;
use crate::rng::Rng;

/// Retries a chain task may use when its worker dies (lineage re-runs count too).
const TASK_RETRIES: u32 = 20;

/// Submit `function(args)` with request id `request_id`; records the op and returns the object.
async fn submit(
    ctx: &Ctx,
    p: usize,
    request_id: String,
    function: &str,
    args: Vec<pb::arg::Kind>,
    expect: Expect,
) -> Option<String> {
    let req = pb::SubmitTaskRequest {
        request_id: request_id.clone(),
        function: function.into(),
        args: args
            .into_iter()
            .map(|k| pb::Arg { kind: Some(k) })
            .collect(),
        options: Some(pb::TaskOptions {
            max_retries: Some(TASK_RETRIES),
            retry_exceptions: false,
            resources: None,
        }),
        session_id: String::new(),
    };
    let t0 = ctx.rec.now_ms();
    let mut replies = Vec::new();
    let reply = ctx
        .raw
        .call(OP_BUDGET, |mut h| {
            let r = req.clone();
            async move { h.submit_task(r).await }
        })
        .await;
    let (outcome, error) = match reply {
        Reply::Ok(r) => {
            replies.push(r.object_id);
            (Outcome::Ok, None)
        }
        Reply::Fail(s) => (
            Outcome::Fail,
            Some(format!("{:?}: {}", s.code(), s.message())),
        ),
        Reply::Unknown(e) => (Outcome::Unknown, Some(e)),
    };
    // Ask once more with the same request id: a head that deduplicates answers with the same
    // task; one that does not starts a second task (the duplicate checker's witness).
    if outcome == Outcome::Ok
        && let Reply::Ok(again) = ctx
            .raw
            .call(Duration::from_secs(5), |mut h| {
                let r = req.clone();
                async move { h.submit_task(r).await }
            })
            .await
    {
        replies.push(again.object_id);
    }
    let object = replies.first().cloned();
    ctx.record(
        p,
        request_id.clone(),
        t0,
        outcome,
        OpValue::Submit {
            request_id,
            function: function.into(),
            expect,
            replies,
        },
        error,
    );
    object
}

/// Read `object` (waiting up to the op budget) and record what came back.
pub async fn read(ctx: &Ctx, p: usize, object: &str, expect: Expect, final_check: bool) {
    let t0 = ctx.rec.now_ms();
    let parsed = ObjectId::parse(object).map(ObjectRef::new);
    let result = match parsed {
        Ok(r) => ctx.client.get(&r, OP_BUDGET).await,
        Err(e) => Err(xnai_sdk::Error::Protocol(e.to_string())),
    };
    let (outcome, got, error) = match result {
        Ok(bytes) => {
            let got = match expect {
                Expect::DigestOfFill { .. } => String::from_utf8_lossy(&bytes).trim().to_string(),
                _ => crate::rng::sha256_hex(&bytes),
            };
            (Outcome::Ok, Some(got), None)
        }
        Err(e @ (xnai_sdk::Error::TaskFailed(_) | xnai_sdk::Error::ObjectLost(_))) => {
            (Outcome::Fail, None, Some(e.to_string()))
        }
        Err(e) if e.code() == Some(tonic::Code::NotFound) => {
            (Outcome::Fail, None, Some(e.to_string()))
        }
        Err(e) => (Outcome::Unknown, None, Some(e.to_string())),
    };
    ctx.record(
        p,
        object,
        t0,
        outcome,
        OpValue::Read {
            object: object.into(),
            expect,
            got,
            final_check,
        },
        error,
    );
}

/// One chain: fill, digest, read the digest.
pub async fn chain(ctx: &Ctx, p: usize, rng: &mut Rng, seq: &mut u64) {
    let size = rng.range(16 << 10, 128 << 10);
    let seed = rng.next_u64();
    let keep = rng.below(super::KEEP_ONE_IN) == 0;
    let fill = submit(
        ctx,
        p,
        ctx.request_id(p, *seq),
        "fill",
        vec![
            pb::arg::Kind::Value(size.to_string().into_bytes()),
            pb::arg::Kind::Value(seed.to_string().into_bytes()),
        ],
        Expect::Fill { size, seed },
    )
    .await;
    let Some(fill) = fill else { return };
    let mut made = vec![fill.clone()];
    *seq += 1;
    let digest = submit(
        ctx,
        p,
        ctx.request_id(p, *seq),
        "digest",
        vec![pb::arg::Kind::ObjectId(fill.clone())],
        Expect::DigestOfFill { size, seed },
    )
    .await;
    if let Some(d) = digest {
        read(ctx, p, &d, Expect::DigestOfFill { size, seed }, false).await;
        made.push(d);
    }
    ctx.free_unless(p, keep, made).await;
}
