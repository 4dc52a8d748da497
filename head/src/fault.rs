//! TEST-ONLY fault hook for the supervision tests (`tests/tests/raft/t60_*`): with
//! `XNAI_TEST_RAFT_FAULT=FILE` in the environment (read once), the Raft node task reads FILE on
//! every tick; once it holds `ID panic` or `ID disk-full` for this head's id, the task panics
//! there, or its next persist fails as if the disk were full. Unset (the default), nothing
//! here runs and no file is read. Never set it outside tests.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The environment variable naming the trigger file.
pub const FAULT_ENV: &str = "XNAI_TEST_RAFT_FAULT";

/// A fault the test asks the Raft node task of one head to suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftFault {
    /// The node task panics (as a raft-rs assertion would).
    Panic,
    /// Persisting entries or the hard state fails with "no space left on device".
    DiskFull,
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

/// Parse the trigger file's text: `ID panic` or `ID disk-full`, for head `id`.
pub fn parse(text: &str, id: u64) -> Option<RaftFault> {
    let mut words = text.split_whitespace();
    let target: u64 = words.next()?.parse().ok()?;
    if target != id {
        return None;
    }
    match words.next()? {
        "panic" => Some(RaftFault::Panic),
        "disk-full" => Some(RaftFault::DiskFull),
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
    }
}
