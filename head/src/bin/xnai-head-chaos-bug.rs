//! TEST ONLY: `xnai-head` built with the `chaos-bug` feature, so the deliberate
//! ack-before-commit bug (`service/chaos_bug`) can be switched on with `XNAI_CHAOS_BUG`. Only the
//! chaos harness's self-test builds it (`required-features` keeps it out of normal builds).

#[path = "../main.rs"]
mod head_main;

fn main() -> std::process::ExitCode {
    head_main::main()
}
