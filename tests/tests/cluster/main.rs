//! Multi-process tests of a local cluster (issue 2): real `xnai-head` and `xnai-worker`
//! processes started by `xnai up`, driven through the `xnai` CLI, the SDK and raw gRPC.
//! Build the binaries first (`cargo build --bins`); `scripts/test.sh` does.

mod t10_tasks;
mod t20_objects;
mod t21_shared_memory;
mod t30_actors;
mod t40_wire;
mod t50_status;
mod t60_spill;
mod t90_issue_14_bounded_state;
mod t91_issue_14_listen_fd;
mod t92_issue_14_worker_sizing;
