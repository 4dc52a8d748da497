//! The arena's few touches of the filesystem: statvfs/statfs checks, directory setup and
//! cleanup, file naming and mmap. Kept small and separate so the rest of the arena is logic and
//! tests can run on any directory.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use xnai_proto::ids::ObjectId;

use crate::error::{Result, WorkerError};

/// `statfs.f_type` of tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Space on the filesystem holding a path.
#[derive(Debug, Clone, Copy)]
pub struct FsSpace {
    /// Total bytes of the filesystem.
    pub total: u64,
    /// Bytes available to unprivileged users.
    pub free: u64,
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        WorkerError::Config(format!(
            "arena: path {} contains a NUL byte",
            path.display()
        ))
    })
}

/// statvfs of the filesystem holding `path`.
pub fn fs_space(path: &Path) -> Result<FsSpace> {
    let c = c_path(path)?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value and the call fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a valid out pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(WorkerError::io(
            format!("arena: statvfs {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    let frsize = st.f_frsize as u64;
    Ok(FsSpace {
        total: st.f_blocks as u64 * frsize,
        free: st.f_bavail as u64 * frsize,
    })
}

/// Whether the filesystem holding `path` is tmpfs (`None` if statfs failed).
pub fn is_tmpfs(path: &Path) -> Option<bool> {
    let c = c_path(path).ok()?;
    // SAFETY: as in `fs_space`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid string and out pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_type as i64 == TMPFS_MAGIC)
}

/// Refuse a capacity the filesystem cannot hold; `shown` names the place in the message.
pub fn check_capacity(path: &Path, shown: &Path, capacity: u64) -> Result<()> {
    let space = fs_space(path)?;
    if space.free < capacity {
        return Err(WorkerError::ArenaTooSmall {
            dir: shown.display().to_string(),
            free: space.free,
            capacity,
        });
    }
    Ok(())
}

/// The default arena directory: a fresh `/dev/shm/xnai-arena-<random hex>`.
pub fn default_dir() -> PathBuf {
    let r: u64 = rand::random();
    PathBuf::from(format!("/dev/shm/xnai-arena-{r:016x}"))
}

/// Final file name of an object.
pub fn object_path(dir: &Path, id: &ObjectId) -> PathBuf {
    dir.join(id.hex())
}

/// Temporary file name of an object being written (`seq` makes concurrent writers distinct).
pub fn temp_path(dir: &Path, id: &ObjectId, seq: u64) -> PathBuf {
    dir.join(format!(".tmp-{}-{seq}", id.hex()))
}

/// Whether a file name is one the arena writes (object or temp file).
fn is_arena_file(name: &str) -> bool {
    name.starts_with(".tmp-") || (name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Remove the arena's files (objects and temps) from `dir`, leaving anything else alone.
pub fn clean_dir(dir: &Path) -> Result<()> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| WorkerError::io(format!("arena: listing {}", dir.display()), e))?;
    for entry in rd.flatten() {
        if entry.file_name().to_str().is_some_and(is_arena_file) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Map a complete object file read-only; empty files give empty bytes.
pub fn map_file(path: &Path, size: u64) -> Result<Bytes> {
    if size == 0 {
        return Ok(Bytes::new());
    }
    let file = File::open(path)
        .map_err(|e| WorkerError::io(format!("arena: opening {}", path.display()), e))?;
    // SAFETY: arena files are immutable once renamed into place and only removed (never
    // truncated), so the mapping stays valid for its whole life. Populated up front: one call
    // instead of a page fault per 4 KiB when the object is streamed or digested.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .map_err(|e| WorkerError::io(format!("arena: mapping {}", path.display()), e))?;
    if map.len() as u64 != size {
        return Err(WorkerError::SizeMismatch {
            expected: size,
            got: map.len() as u64,
        });
    }
    Ok(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let id = ObjectId(0xabc << 8);
        std::fs::write(object_path(dir.path(), &id), b"x").unwrap();
        std::fs::write(temp_path(dir.path(), &id, 3), b"y").unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"z").unwrap();
        clean_dir(dir.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keep.txt")]);
    }

    #[test]
    fn refuses_a_capacity_larger_than_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let space = fs_space(dir.path()).unwrap();
        check_capacity(dir.path(), Path::new("/x"), 1).unwrap();
        let err = check_capacity(dir.path(), Path::new("/x"), space.total + (1 << 40)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("arena: /x has "), "{msg}");
        assert!(
            msg.ends_with("shrink --arena-bytes or enlarge the tmpfs mount"),
            "{msg}"
        );
    }

    #[test]
    fn dev_shm_is_tmpfs_when_present() {
        if Path::new("/dev/shm").exists() {
            assert_eq!(is_tmpfs(Path::new("/dev/shm")), Some(true));
        }
    }
}
