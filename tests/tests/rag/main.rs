//! Retrieval and RAG (issue 8) on the real models: all-MiniLM-L6-v2 converted to GGUF by our
//! own converter (`scripts/rag/minilm_to_gguf.py`, run by `scripts/fetch-models.sh`) for
//! embeddings and Gemma 3 270M for generation. Build the binaries first (`cargo build --bins`).

mod t10_minilm;
mod t20_search;
mod t30_restart;
mod t40_ask;

use std::path::{Path, PathBuf};

use xnai_tests::Cluster;

fn model_file(name: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name);
    if !path.is_file() {
        anyhow::bail!(
            "{} is missing: run scripts/fetch-models.sh (scripts/setup.sh does) first",
            path.display()
        );
    }
    Ok(path)
}

/// The embedding model GGUF.
pub fn minilm_path() -> anyhow::Result<PathBuf> {
    model_file("all-minilm-l6-v2-f32.gguf")
}

/// The numpy reference embeddings written beside it.
pub fn minilm_reference_path() -> anyhow::Result<PathBuf> {
    model_file("minilm-reference.json")
}

/// The generation model.
pub fn gemma_path() -> anyhow::Result<PathBuf> {
    model_file("gemma-3-270m-q4_k_m.gguf")
}

/// Creates the inference actor `name` serving MiniLM embeddings (through the CLI, which sizes
/// it from the GGUF header).
pub fn create_embedder(c: &Cluster, name: &str) -> anyhow::Result<()> {
    let model = format!("model={}", minilm_path()?.display());
    c.xnai_ok(&[
        "actor",
        "create",
        "inference",
        "--name",
        name,
        "--",
        &model,
        "ctx=512",
    ])?;
    Ok(())
}

/// Creates the retrieval actor `name` embedding through the inference actor `embedder`, with
/// extra constructor parameters (`chunk=60`, ...).
pub fn create_retrieval(
    c: &Cluster,
    name: &str,
    embedder: &str,
    params: &[&str],
) -> anyhow::Result<()> {
    let embedder = format!("embedder={embedder}");
    let mut args = vec![
        "actor",
        "create",
        "retrieval",
        "--name",
        name,
        "--",
        &embedder,
    ];
    args.extend_from_slice(params);
    c.xnai_ok(&args)?;
    Ok(())
}

/// A small corpus: one topic per file (id = path), plus files `index add` must skip.
pub const CORPUS: &[(&str, &str)] = &[
    (
        "raft.md",
        "# Consensus\n\nRaft keeps a replicated log consistent across servers. A leader is \
         elected by a majority vote, appends client commands to its log and replicates them \
         to followers; an entry is committed once a majority stores it.",
    ),
    (
        "bread.txt",
        "To bake sourdough bread, mix flour, water and salt with an active starter, let the \
         dough ferment overnight, shape it into a loaf and bake it in a hot Dutch oven until \
         the crust is dark and crisp.",
    ),
    (
        "volcano.md",
        "Volcanoes erupt when molten rock called magma rises through the crust. Lava flows, ash \
         clouds and pyroclastic flows make eruptions dangerous for nearby towns.",
    ),
    (
        "notes/vault.txt",
        "Internal memo of the Zorblax company: the access code of the Zorblax vault is 7291. \
         Only the night guard Mirela Quist may open the vault.",
    ),
    (
        "notes/football.md",
        "The football match ended two to one after a late penalty; the goalkeeper saved a shot \
         in the final minute and the fans celebrated in the stadium.",
    ),
];

/// Writes [`CORPUS`] under `dir`, plus a PDF-named file, a binary `.txt` and an empty `.md`
/// (three files `index add` skips, each for its own reason).
pub fn write_corpus(dir: &Path) -> anyhow::Result<()> {
    for (name, text) in CORPUS {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(path, text)?;
    }
    std::fs::write(dir.join("report.pdf"), b"%PDF-1.4")?;
    std::fs::write(dir.join("notes/blob.txt"), [0xff, 0xfe, 0x00, 0x81])?;
    std::fs::write(dir.join("empty.md"), "  \n")?;
    Ok(())
}

/// The document id `index add` gives file `name` of a corpus written under `dir`.
pub fn doc_id(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
