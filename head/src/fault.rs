//! TEST-ONLY fault hook for the supervision and snapshot tests (`tests/tests/raft/t60_*`,
//! `t70_*`): with `XNAI_TEST_RAFT_FAULT=FILE` in the environment (read once), the Raft node task
//! reads FILE on every tick; once it holds `ID panic` or `ID disk-full` for this head's id, the
//! task panics there, or its next persist fails as if the disk were full; with
//! `ID snapshot-crash STEP` the process exits at once after that step of installing a snapshot
//! from the leader ([`InstallStep`]). Unset (the default), nothing here runs and no file is read.
//! Never set it outside tests.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::log::LogError;

/// The environment variable naming the trigger file.
pub const FAULT_ENV: &str = "XNAI_TEST_RAFT_FAULT";

/// A fault the test asks the Raft node task of one head to suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftFault {
    /// The node task panics (as a raft-rs assertion would).
    Panic,
    /// Persisting entries or the hard state fails with "no space left on device".
    DiskFull,
    /// The process exits right after this step of a snapshot install.
    SnapshotCrash(InstallStep),
}

/// The steps of installing a snapshot from the leader, in order; a crash after any of them
/// leaves either the old state or the new one, and the head boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStep {
    /// The data is in a temporary file, fsynced.
    DataWritten,
    /// The file has its final name (directory fsynced).
    Renamed,
    /// The raft metadata points at the new snapshot (one sled transaction, flushed).
    Switched,
    /// The entries the snapshot replaces are gone.
    LogCleared,
    /// The state machine holds the snapshot's state.
    Applied,
}

impl InstallStep {
    /// Every step, in order.
    pub const ALL: [InstallStep; 5] = [
        InstallStep::DataWritten,
        InstallStep::Renamed,
        InstallStep::Switched,
        InstallStep::LogCleared,
        InstallStep::Applied,
    ];

    /// The name a trigger file uses.
    pub fn name(self) -> &'static str {
        match self {
            InstallStep::DataWritten => "data-written",
            InstallStep::Renamed => "renamed",
            InstallStep::Switched => "switched",
            InstallStep::LogCleared => "log-cleared",
            InstallStep::Applied => "applied",
        }
    }
}

impl fmt::Display for InstallStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Called after each step of a snapshot install: `Err` stops the install (and the node) there.
pub type StepHook = Arc<dyn Fn(InstallStep) -> Result<(), LogError> + Send + Sync>;

/// The production hook for head `id`: `None` unless the fault hook is armed; when armed, it exits
/// the process after the step the trigger file names.
pub fn install_hook(id: u64) -> Option<StepHook> {
    trigger_file()?;
    Some(Arc::new(move |step| {
        if raft_fault(id) == Some(RaftFault::SnapshotCrash(step)) {
            eprintln!(
                "xnai-head: crashing after snapshot install step {step} (XNAI_TEST_RAFT_FAULT)"
            );
            std::process::exit(86);
        }
        Ok(())
    }))
}

fn trigger_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = std::env::var_os(FAULT_ENV).map(PathBuf::from);
        if let Some(f) = &file {
            tracing::warn!(file = %f.display(), "{FAULT_ENV} is set: raft fault hook armed (TEST ONLY)");
        }
        file
    })
    .as_ref()
}

/// Parse the trigger file's text: `ID panic`, `ID disk-full` or `ID snapshot-crash STEP`, for
/// head `id`.
pub fn parse(text: &str, id: u64) -> Option<RaftFault> {
    let mut words = text.split_whitespace();
    let target: u64 = words.next()?.parse().ok()?;
    if target != id {
        return None;
    }
    match words.next()? {
        "panic" => Some(RaftFault::Panic),
        "disk-full" => Some(RaftFault::DiskFull),
        "snapshot-crash" => {
            let step = words.next()?;
            InstallStep::ALL
                .into_iter()
                .find(|s| s.name() == step)
                .map(RaftFault::SnapshotCrash)
        }
        _ => None,
    }
}

/// The fault asked of head `id` now, if the hook is armed and the file names it.
pub fn raft_fault(id: u64) -> Option<RaftFault> {
    let file = trigger_file()?;
    let text = std::fs::read_to_string(file).ok()?;
    parse(&text, id)
}

/// Called before the node task persists: fails like a full disk when asked to.
pub fn before_persist(id: u64) -> Result<(), sled::Error> {
    if raft_fault(id) == Some(RaftFault::DiskFull) {
        return Err(sled::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device (injected by XNAI_TEST_RAFT_FAULT)",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_this_heads_fault() {
        assert_eq!(parse("2 panic\n", 2), Some(RaftFault::Panic));
        assert_eq!(parse("2 disk-full", 2), Some(RaftFault::DiskFull));
        assert_eq!(parse("3 panic", 2), None);
        assert_eq!(parse("2 melt", 2), None);
        assert_eq!(parse("", 2), None);
        assert_eq!(parse("x panic", 2), None);
        assert_eq!(
            parse("2 snapshot-crash switched", 2),
            Some(RaftFault::SnapshotCrash(InstallStep::Switched))
        );
        assert_eq!(parse("2 snapshot-crash", 2), None);
        assert_eq!(parse("2 snapshot-crash sideways", 2), None);
    }
}
