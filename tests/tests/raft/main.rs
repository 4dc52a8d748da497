//! Multi-process tests of the Raft-replicated head (issue 3): three (or four) real `xnai-head`
//! processes started by `xnai up --heads 3`, killed, paused, restarted, added and removed, while
//! clients and workers keep working; supervision of the Raft task (t60) and honest health
//! (t70); a snapshot install killed half-way (t80). Build the binaries first (`cargo build --bins`).

mod common;
mod t10_kill_leader;
mod t20_pause_leader;
mod t30_restart;
mod t40_membership;
mod t50_peer_garbage;
mod t60_raft_task_dies;
mod t70_health;
mod t80_snapshot_crash;
