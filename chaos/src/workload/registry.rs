//! The named-actor register: create (with a name), lookup and kill on a couple of shared
//! names, all processes contending. Writes carry our request ids and are retried with them;
//! answers are recorded exactly as the head gave them, for the linearizability checker.

use xnai_proto::pb;

use super::{Ctx, OP_BUDGET, REGISTER_NAMES};
use crate::history::{OpValue, Outcome, RegisterOp, RegisterResult};
use crate::raw::Reply;
use crate::rng::Rng;

fn actor(info_id: String, dead: bool) -> RegisterResult {
    RegisterResult::Actor { id: info_id, dead }
}

/// One register operation on a random shared name.
pub async fn step(ctx: &Ctx, p: usize, rng: &mut Rng, seq: u64) {
    let name = REGISTER_NAMES[rng.below(REGISTER_NAMES.len() as u64) as usize].to_string();
    let dice = rng.below(10);
    let op = if dice < 4 {
        RegisterOp::Create
    } else if dice < 8 {
        RegisterOp::Lookup
    } else {
        RegisterOp::Kill
    };
    let request_id = ctx.request_id(p, seq);
    let t0 = ctx.rec.now_ms();
    let reply: Reply<RegisterResult> = match op {
        RegisterOp::Create => {
            let req = pb::CreateActorRequest {
                request_id,
                class: "counter".into(),
                args: vec![],
                options: Some(pb::ActorOptions {
                    name: name.clone(),
                    max_restarts: -1,
                    ..Default::default()
                }),
            };
            map(
                ctx.raw
                    .call(OP_BUDGET, |mut h| {
                        let r = req.clone();
                        async move { h.create_actor(r).await }
                    })
                    .await,
                |r| actor(r.actor_id, false),
            )
        }
        RegisterOp::Lookup => {
            let req = pb::GetActorRequest {
                name_or_id: name.clone(),
                timeout_ms: 0,
            };
            map(
                ctx.raw
                    .call(OP_BUDGET, |mut h| {
                        let r = req.clone();
                        async move { h.get_actor(r).await }
                    })
                    .await,
                |i| {
                    let dead = i.state == pb::ActorState::Dead as i32;
                    actor(i.actor_id, dead)
                },
            )
        }
        RegisterOp::Kill => {
            let req = pb::KillActorRequest {
                request_id,
                name_or_id: name.clone(),
            };
            map(
                ctx.raw
                    .call(OP_BUDGET, |mut h| {
                        let r = req.clone();
                        async move { h.kill_actor(r).await }
                    })
                    .await,
                |r| actor(r.actor_id, true),
            )
        }
    };
    let (outcome, result, error) = match reply {
        Reply::Ok(r) => (Outcome::Ok, Some(r), None),
        Reply::Fail(s) => match s.code() {
            tonic::Code::AlreadyExists => (Outcome::Ok, Some(RegisterResult::Taken), None),
            tonic::Code::NotFound => (Outcome::Ok, Some(RegisterResult::NotFound), None),
            _ => (
                Outcome::Fail,
                None,
                Some(format!("{:?}: {}", s.code(), s.message())),
            ),
        },
        Reply::Unknown(e) => (Outcome::Unknown, None, Some(e)),
    };
    ctx.record(
        p,
        name,
        t0,
        outcome,
        OpValue::Register { op, result },
        error,
    );
}

fn map<T>(r: Reply<T>, f: impl FnOnce(T) -> RegisterResult) -> Reply<RegisterResult> {
    match r {
        Reply::Ok(v) => Reply::Ok(f(v)),
        Reply::Fail(s) => Reply::Fail(s),
        Reply::Unknown(e) => Reply::Unknown(e),
    }
}
