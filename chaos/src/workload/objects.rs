//! Puts: seeded random bytes of a known SHA-256 are put, then read back at once.

use bytes::Bytes;

use super::Ctx;
use super::tasks::read;
use crate::history::{Expect, OpValue, Outcome};
use crate::rng::{Rng, sha256_hex};

/// Put 4-64 KiB and read it back.
pub async fn put_then_read(ctx: &Ctx, p: usize, rng: &mut Rng) {
    let size = rng.range(4 << 10, 64 << 10);
    let data = rng.bytes(size as usize);
    let keep = rng.below(super::KEEP_ONE_IN) == 0;
    let expect = Expect::Sha256 {
        hex: sha256_hex(&data),
    };
    let t0 = ctx.rec.now_ms();
    let result = tokio::time::timeout(super::OP_BUDGET, ctx.client.put(Bytes::from(data))).await;
    let (outcome, object, error) = match result {
        Ok(Ok(r)) => (Outcome::Ok, Some(r.id().hex()), None),
        // A refused put (arena full, bad request) did not store anything.
        Ok(Err(e))
            if matches!(
                e.code(),
                Some(tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument)
            ) =>
        {
            (Outcome::Fail, None, Some(e.to_string()))
        }
        Ok(Err(e)) => (Outcome::Unknown, None, Some(e.to_string())),
        Err(_) => (Outcome::Unknown, None, Some("timed out".into())),
    };
    let key = object.clone().unwrap_or_else(|| "put".into());
    ctx.record(
        p,
        key,
        t0,
        outcome,
        OpValue::Put {
            size,
            expect: expect.clone(),
            object: object.clone(),
        },
        error,
    );
    if let Some(o) = object {
        read(ctx, p, &o, expect, false).await;
        ctx.free_unless(p, keep, vec![o]).await;
    }
}
