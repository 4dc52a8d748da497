//! Multi-process fault-tolerance tests (issue 4): real heads and workers, with workers killed
//! (SIGKILL), paused (SIGSTOP/SIGCONT) or under memory pressure, and clients that exit without
//! releasing. Every wait is a condition with a deadline. Build the binaries first.

mod t10_retries;
mod t20_actor_restart;
mod t30_lineage;
mod t40_breaker;
mod t50_sessions;
mod util;
