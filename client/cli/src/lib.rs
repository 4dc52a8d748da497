//! The `xnai` command line ([`cli`]) and the local-cluster launcher behind `xnai up` /
//! `xnai down` ([`launcher`]), both built on the SDK crate (`xnai-sdk`). The binary `xnai` is
//! `main.rs`; this library exists so the binary stays thin and the chaos harness can quote
//! node logs the way the launcher does.

pub mod cli;
pub mod launcher;
