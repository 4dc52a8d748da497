//! Multi-process tests of inference actors (issue 5) on the real Gemma 3 270M model: a local
//! cluster from `xnai up`, driven through the `xnai` CLI and the SDK. Build the binaries first
//! (`cargo build --bins`); the model comes from `scripts/fetch-models.sh`.

mod t10_generate;
mod t20_placement;

use std::path::PathBuf;

/// The test model; fails (not skips) when it is absent, saying how to get it.
pub fn model_path() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/gemma-3-270m-q4_k_m.gguf"
    ));
    if !path.is_file() {
        anyhow::bail!(
            "model {} is missing: run scripts/fetch-models.sh (scripts/setup.sh does) first",
            path.display()
        );
    }
    Ok(path)
}

/// The prompt every test asks.
pub const QUESTION: &str = "Question: What is the capital of France?\nAnswer:";
