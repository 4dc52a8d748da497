//! TEST-ONLY fault injection for the chaos harness (`xnai-chaos`, docs/CHAOS.md), compiled only
//! with the cargo feature `chaos-bug` (the `xnai-head-chaos-bug` binary; never in release
//! binaries). With `XNAI_CHAOS_BUG=ack-before-commit` in the environment, `SubmitTask` answers
//! before its command is committed and proposes it a second later, so a leader that dies in that
//! second loses writes it acknowledged. It exists only to prove the harness's checkers can fail.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tonic::Response;
use xnai_proto::ids::TaskId;
use xnai_proto::pb;

use super::HeadContext;
use crate::state::Command;

/// Whether the deliberate ack-before-commit bug is switched on (read once).
pub(super) fn ack_before_commit() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var("XNAI_CHAOS_BUG").is_ok_and(|v| v == "ack-before-commit");
        if on {
            tracing::warn!(
                "XNAI_CHAOS_BUG=ack-before-commit: acknowledging before commit (TEST ONLY)"
            );
        }
        on
    })
}

/// Acknowledge the submission at once and propose it later, in the background.
pub(super) fn ack_now(
    ctx: Arc<HeadContext>,
    command: Command,
    task_id: TaskId,
) -> Response<pb::SubmitTaskReply> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = ctx.propose_one(command).await;
    });
    Response::new(pb::SubmitTaskReply {
        task_id: task_id.hex(),
        object_id: task_id.return_object().hex(),
    })
}
