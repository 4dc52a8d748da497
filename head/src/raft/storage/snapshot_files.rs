//! Where [`super::SledStorage`] keeps snapshot data: one file per snapshot in a directory of its
//! own, written atomically (a temporary file, fsync, rename, fsync of the directory), so sled
//! holds only the small metadata that points at the file and switches to a new snapshot in one
//! transaction. Leftovers of an interrupted write (temporary files, files nothing points at) are
//! removed when the storage opens and after each switch.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::fault::{InstallStep, StepHook};
use crate::log::LogError;

const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".tmp";

fn io_err(what: &str, path: &Path, e: std::io::Error) -> LogError {
    LogError::Storage(sled::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    )))
}

/// The directory of snapshot files.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    /// Use (and create) `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, LogError> {
        fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The file name of the snapshot at (index, term).
    pub(crate) fn name(index: u64, term: u64) -> String {
        format!("{index:020}-{term:020}{SUFFIX}")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write `data` as `name` durably, unless a complete file of that name is there already
    /// (written ahead, off the node's loop). `hook` runs after each step.
    pub(crate) fn write(
        &self,
        name: &str,
        data: &[u8],
        hook: Option<&StepHook>,
    ) -> Result<(), LogError> {
        let path = self.path(name);
        if fs::metadata(&path).is_ok_and(|m| m.len() == data.len() as u64) {
            return Ok(());
        }
        let tmp = self.path(&format!("{name}{TMP_SUFFIX}"));
        let mut f = fs::File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        drop(f);
        step(hook, InstallStep::DataWritten)?;
        fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &tmp, e))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync", &self.dir, e))?;
        step(hook, InstallStep::Renamed)
    }

    /// The data of snapshot file `name`.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, LogError> {
        let path = self.path(name);
        fs::read(&path).map_err(|e| LogError::Corrupt {
            index: 0,
            reason: format!("the snapshot file {} cannot be read: {e}", path.display()),
        })
    }

    /// Remove every snapshot file but `keep`, and with `tmp` the temporary files too (only when
    /// nothing can be writing one: at open). Best effort: a file left behind goes next time.
    pub(crate) fn clean(&self, keep: Option<&str>, tmp: bool) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.ends_with(SUFFIX) || (tmp && name.ends_with(TMP_SUFFIX));
            if ours
                && Some(name.as_ref()) != keep
                && let Err(e) = fs::remove_file(entry.path())
            {
                tracing::warn!(file = %name, error = %e, "cannot remove an old snapshot file");
            }
        }
    }

    /// The names of the files there (tests).
    #[cfg(test)]
    pub(crate) fn list(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// Run the test hook after `s`, if any.
pub(crate) fn step(hook: Option<&StepHook>, s: InstallStep) -> Result<(), LogError> {
    match hook {
        Some(h) => h(s),
        None => Ok(()),
    }
}
