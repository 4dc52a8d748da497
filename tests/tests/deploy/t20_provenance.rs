//! Issue 21 (supply chain): `deploy/build-image.sh` writes a CycloneDX SBOM of the image and
//! signs the image id plus the SBOM digest; `deploy/up.sh` with `XNAI_TRUSTED_KEY` refuses an
//! image that is not exactly the signed one. Real Docker, real ssh-keygen signatures, the real
//! binaries this test run built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail, ensure};

use super::deployment::docker_available;

const IMAGE: &str = "xnai:provtest";
const PROJECT: &str = "xnaiprov";

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A deploy script with this test's image, project and state directory.
fn script(state: &Path, name: &str) -> Result<Command> {
    let mut c = Command::new(repo_dir().join("deploy").join(name));
    c.env("XNAI_BIN_DIR", xnai_tests::bin_dir()?)
        .env("XNAI_PROFILE", "debug")
        .env("XNAI_PROJECT", PROJECT)
        .env("XNAI_IMAGE", IMAGE)
        .env("XNAI_STATE_DIR", state)
        .env("XNAI_PORT_BASE", "27500")
        .env_remove("XNAI_TRUSTED_KEY")
        .env_remove("XNAI_SIGNING_KEY")
        .env_remove("XNAI_SIGNATURE_DIR")
        .stdin(Stdio::null());
    Ok(c)
}

fn run(c: &mut Command, what: &str) -> Result<Output> {
    c.output().with_context(|| format!("cannot run {what}"))
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run docker")?;
    ensure!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `name -> version` of every package Cargo.lock pins (the last version wins for duplicates;
/// the checks below use crates that appear once).
fn cargo_lock() -> Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(repo_dir().join("Cargo.lock"))?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            out.entry(n)
                .or_default()
                .push(v.trim_matches('"').to_string());
        }
    }
    Ok(out)
}

/// Remove the test's images whatever happens.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn t20_sbom_lists_crates_and_llama_and_up_refuses_a_modified_image() -> Result<()> {
    xnai_tests::init_tracing();
    if !docker_available() {
        tracing::warn!("no Docker engine answers `docker info`: provenance test skipped");
        return Ok(());
    }
    let _cleanup = Cleanup;
    let state = tempfile::tempdir()?;

    let out = run(
        &mut script(state.path(), "build-image.sh")?,
        "build-image.sh",
    )?;
    ensure!(
        out.status.success(),
        "build-image.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prov = state.path().join("provenance");
    let sbom_text = std::fs::read_to_string(prov.join("sbom.cdx.json"))?;
    let sbom: serde_json::Value = serde_json::from_str(&sbom_text)?;
    ensure!(sbom["bomFormat"] == "CycloneDX", "not a CycloneDX document");
    let components = sbom["components"].as_array().context("no components")?;

    // Every crate entry is pinned exactly as Cargo.lock pins it, and the image's main crates
    // are there.
    let lock = cargo_lock()?;
    let mut crates = BTreeMap::new();
    for c in components {
        let purl = c["purl"].as_str().unwrap_or_default();
        if purl.starts_with("pkg:cargo/") {
            let (name, version) = (c["name"].as_str(), c["version"].as_str());
            let (name, version) = (name.context("name")?, version.context("version")?);
            ensure!(
                lock.get(name)
                    .is_some_and(|v| v.iter().any(|x| x == version)),
                "SBOM lists {name} {version}, which Cargo.lock does not pin"
            );
            crates.insert(name.to_string(), version.to_string());
        }
    }
    for name in [
        "tonic",
        "prost",
        "tokio",
        "raft",
        "sled",
        "actix",
        "llama-cpp-2",
        "llama-cpp-sys-2",
        "xnai-head",
        "xnai-worker",
    ] {
        let want = lock
            .get(name)
            .with_context(|| format!("{name} not in Cargo.lock"))?;
        let got = crates
            .get(name)
            .with_context(|| format!("SBOM lacks {name}"))?;
        ensure!(
            want.contains(got),
            "{name}: SBOM {got}, Cargo.lock {want:?}"
        );
    }
    ensure!(crates.len() > 150, "only {} crates listed", crates.len());
    // Dev-only crates are not in the image.
    ensure!(!crates.contains_key("tempfile") || lock_needs_tempfile_in_image());
    let llama = components
        .iter()
        .find(|c| c["name"] == "llama.cpp")
        .context("SBOM lacks llama.cpp")?;
    ensure!(
        llama["hashes"][0]["content"]
            .as_str()
            .is_some_and(|h| h.len() == 64),
        "llama.cpp entry has no SHA-256: {llama}"
    );
    ensure!(
        components.iter().any(|c| c["purl"]
            .as_str()
            .is_some_and(|p| p.starts_with("pkg:deb/debian/libstdc++6@"))),
        "SBOM lacks the Debian package of libstdc++ the worker links"
    );

    // The SBOM inside the image is the signed one.
    let id = docker(&["create", IMAGE, "/usr/local/bin/xnai"])?;
    let inside = state.path().join("inside.json");
    let cp = docker(&[
        "cp",
        &format!("{id}:/usr/share/xnai/sbom.cdx.json"),
        inside.to_str().context("path")?,
    ]);
    docker(&["rm", &id])?;
    cp?;
    ensure!(
        std::fs::read_to_string(&inside)? == sbom_text,
        "image SBOM differs"
    );

    // Verification passes on the built image with the generated key ...
    let key = state.path().join("signing/xnai-image.pub");
    let ok = run(
        script(state.path(), "verify-image.sh")?.arg(&key),
        "verify-image.sh",
    )?;
    ensure!(
        ok.status.success(),
        "verify-image.sh refused the signed image: {}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // ... and up.sh refuses the same tag once the image is modified, before starting anything.
    let ctx = state.path().join("tamper");
    std::fs::create_dir_all(&ctx)?;
    std::fs::write(ctx.join("x"), b"not what was signed\n")?;
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {IMAGE}\nCOPY x /usr/local/bin/x\n"),
    )?;
    docker(&[
        "build",
        "-q",
        "-f",
        ctx.join("Containerfile").to_str().context("path")?,
        "-t",
        IMAGE,
        ctx.to_str().context("path")?,
    ])?;
    let refused = run(
        script(state.path(), "up.sh")?
            .env("XNAI_SKIP_BUILD", "1")
            .env("XNAI_TRUSTED_KEY", &key),
        "up.sh",
    )?;
    let err = String::from_utf8_lossy(&refused.stderr);
    ensure!(!refused.status.success(), "up.sh started a modified image");
    ensure!(
        err.contains("modified or rebuilt without signing"),
        "up.sh refused for another reason: {err}"
    );
    let label = format!("label=com.docker.compose.project={PROJECT}");
    let left = docker(&["ps", "-aq", "--filter", &label])?;
    if !left.is_empty() {
        bail!("up.sh started containers although it refused the image: {left}");
    }
    Ok(())
}

/// `tempfile` is a dev-dependency everywhere; it may reach the image only through a normal
/// dependency of some crate (then Cargo's graph says so and the SBOM must list it).
fn lock_needs_tempfile_in_image() -> bool {
    Command::new("cargo")
        .args([
            "tree",
            "--offline",
            "-e",
            "normal,build",
            "-p",
            "xnai-head",
            "-p",
            "xnai-worker",
            "-p",
            "xnai-cli",
            "-i",
            "tempfile",
        ])
        .current_dir(repo_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
