//! Same-host shared memory, Ray's plasma idea on xnai's tmpfs arenas: when this process can open
//! a worker's arena files, `get` maps the object's file (no copy; the CRC-32 is checked over the
//! mapping) and `put` writes the bytes straight into a file the worker reserved, then seals it.
//!
//! Which workers are local is learnt per address, once: a worker without the `LocalArena`
//! service, a path that cannot be opened, or a file that is not the one the worker named (another
//! container's tmpfs, say) marks the address remote, and from then on its objects are streamed.
//! Objects under [`LOCAL_MIN_BYTES`] are always streamed: one call either way, and no mapping.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::sync::Mutex;

use bytes::Bytes;
use xnai_proto::limits::CHUNK_BYTES;
use xnai_proto::pb;

use super::Client;
use super::error::{Error, Result};
use super::objects::check_put_reply;
use super::types::{ObjectInfo, ObjectRef};

/// Smallest object moved through shared memory.
pub(crate) const LOCAL_MIN_BYTES: u64 = CHUNK_BYTES as u64;
/// Bytes checksummed then written per step of a local put (stays in cache between the two).
const WRITE_STEP: usize = 256 * 1024;

/// What this client knows about reaching workers' arenas through shared memory.
pub(crate) struct LocalArenas {
    enabled: bool,
    remote: Mutex<HashSet<String>>,
}

impl LocalArenas {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            remote: Mutex::new(HashSet::new()),
        }
    }

    /// Whether to try shared memory for `size` bytes at `address`.
    fn worth(&self, address: &str, size: u64) -> bool {
        self.enabled
            && size >= LOCAL_MIN_BYTES
            && !self
                .remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(address)
    }

    /// A LocalArena reply, or `None` (the worker remembered as remote) when the worker does
    /// not offer that service.
    fn reply<T>(
        &self,
        address: &str,
        r: std::result::Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<Option<T>> {
        match r {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                self.mark_remote(address, "no LocalArena service");
                Ok(None)
            }
            Err(s) => Err(s.into()),
        }
    }

    /// What a failed local read or write means for the caller: `None` (stream instead, the
    /// worker remembered as remote) or an error; `corrupt` words a checksum or size mismatch.
    fn missed<T>(
        &self,
        address: &str,
        miss: Miss,
        corrupt: impl FnOnce(String) -> Error,
    ) -> Result<Option<T>> {
        match miss {
            Miss::NotLocal(why) => {
                self.mark_remote(address, &why);
                Ok(None)
            }
            Miss::Corrupt(what) => Err(corrupt(what)),
            Miss::Changed(what) => Err(Error::InvalidArgument(what)),
            Miss::Io(what, e) => Err(Error::io(what, e)),
        }
    }

    fn mark_remote(&self, address: &str, why: &str) {
        tracing::debug!(
            address,
            "worker's arena is not reachable through shared memory: {why}"
        );
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address.to_string());
    }
}

/// Why a local read or write did not happen.
enum Miss {
    /// This process cannot use that file: the worker is not local to it.
    NotLocal(String),
    /// The file is the worker's but its bytes are not the object's.
    Corrupt(String),
    /// The source changed while it was copied.
    Changed(String),
    /// Reading the source or writing the reserved file failed (full tmpfs, say).
    Io(String, std::io::Error),
}

/// Opens `path` only if it is the file with this device and inode.
fn open_same(path: &str, device: u64, inode: u64, write: bool) -> Result<File, Miss> {
    let file = File::options()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Miss::NotLocal(format!("opening {path}: {e}")))?;
    let m = file
        .metadata()
        .map_err(|e| Miss::NotLocal(format!("stat {path}: {e}")))?;
    if (m.dev(), m.ino()) != (device, inode) {
        return Err(Miss::NotLocal(format!(
            "{path} here is another file than the worker's"
        )));
    }
    Ok(file)
}

/// Maps the object file the worker named and checks its size and CRC-32.
fn map_checked(file: &pb::OpenObjectReply) -> Result<Bytes, Miss> {
    let f = open_same(&file.path, file.device, file.inode, false)?;
    // SAFETY: arena object files are immutable once named and are only ever unlinked, never
    // truncated or rewritten, so the mapping stays valid and unchanged for its whole life.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&f) }
        .map_err(|e| Miss::NotLocal(format!("mapping {}: {e}", file.path)))?;
    if map.len() as u64 != file.size {
        return Err(Miss::Corrupt(format!(
            "arena file holds {} bytes, the object has {}",
            map.len(),
            file.size
        )));
    }
    let crc = crc32fast::hash(&map);
    if crc != file.crc32 {
        return Err(Miss::Corrupt(format!(
            "crc32 {crc:08x}, expected {:08x}",
            file.crc32
        )));
    }
    Ok(Bytes::from_owner(map))
}

/// Writes `data` into the reserved file, returning its CRC-32 (computed on the way).
fn write_bytes(put: &pb::CreateLocalPutReply, data: &[u8]) -> Result<u32, Miss> {
    let f = open_same(&put.path, put.device, put.inode, true)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut at = 0u64;
    for step in data.chunks(WRITE_STEP) {
        hasher.update(step);
        f.write_all_at(step, at)
            .map_err(|e| Miss::Io(format!("writing {}", put.path), e))?;
        at += step.len() as u64;
    }
    Ok(hasher.finalize())
}

/// Copies `src` (`size` bytes, named `name`) into the reserved file, returning its CRC-32.
fn copy_file(
    put: &pb::CreateLocalPutReply,
    mut src: File,
    name: &str,
    size: u64,
) -> Result<u32, Miss> {
    use std::io::Read;
    let f = open_same(&put.path, put.device, put.inode, true)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; WRITE_STEP];
    let mut at = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Miss::Io(format!("reading {name}"), e)),
        };
        if at + n as u64 > size {
            return Err(Miss::Changed(format!(
                "{name} changed size while being read ({size} bytes, then more)"
            )));
        }
        hasher.update(&buf[..n]);
        f.write_all_at(&buf[..n], at)
            .map_err(|e| Miss::Io(format!("writing {}", put.path), e))?;
        at += n as u64;
    }
    if at != size {
        return Err(Miss::Changed(format!(
            "{name} changed size while being read ({size} bytes, then {at})"
        )));
    }
    Ok(hasher.finalize())
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Miss> + Send + 'static,
) -> Result<T, Miss> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(Miss::Io(
            "a blocking file task".into(),
            std::io::Error::other(e),
        ))
    })
}

impl Client {
    /// The object from the worker at `address` through shared memory, or `None` when that
    /// worker is not local to this process (the caller streams it).
    pub(crate) async fn get_local(
        &self,
        info: &ObjectInfo,
        address: &str,
    ) -> Result<Option<Bytes>> {
        let local = &self.inner.local;
        if !local.worth(address, info.size) {
            return Ok(None);
        }
        let mut stub = self.inner.workers.local_stub(address)?;
        let req = pb::OpenObjectRequest {
            object_id: info.object_id.hex(),
        };
        let Some(file) = local.reply(address, stub.open_object(req).await)? else {
            return Ok(None);
        };
        let corrupt = |what: String| Error::Corrupt {
            object: info.object_id.hex(),
            address: address.to_string(),
            what,
        };
        if (file.size, file.crc32) != (info.size, info.crc32) {
            return Err(corrupt(format!(
                "worker holds {} bytes with crc32 {:08x}, head says {} bytes with crc32 {:08x}",
                file.size, file.crc32, info.size, info.crc32
            )));
        }
        match blocking(move || map_checked(&file)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(miss) => local.missed(address, miss, corrupt),
        }
    }

    /// Puts `data` into the worker at `address` through shared memory, or `None` when that
    /// worker is not local to this process (the caller streams it).
    pub(crate) async fn put_local(&self, address: &str, data: &Bytes) -> Result<Option<ObjectRef>> {
        let data = data.clone();
        let size = data.len() as u64;
        self.put_local_with(address, size, move |put| write_bytes(put, &data))
            .await
    }

    /// Puts the file `src` (`size` bytes) like [`Client::put_local`].
    pub(crate) async fn put_file_local(
        &self,
        address: &str,
        src: File,
        name: &str,
        size: u64,
    ) -> Result<Option<ObjectRef>> {
        let name = name.to_string();
        self.put_local_with(address, size, move |put| copy_file(put, src, &name, size))
            .await
    }

    /// Opens a local put of `size` bytes at `address`, lets `write` fill the reserved file
    /// (returning the CRC-32 of what it wrote) and seals it; `None` if the worker is not local.
    async fn put_local_with(
        &self,
        address: &str,
        size: u64,
        write: impl FnOnce(&pb::CreateLocalPutReply) -> Result<u32, Miss> + Send + 'static,
    ) -> Result<Option<ObjectRef>> {
        let local = &self.inner.local;
        if !local.worth(address, size) {
            return Ok(None);
        }
        let mut stub = self.inner.workers.local_stub(address)?;
        let created = stub
            .create_local_put(pb::CreateLocalPutRequest { size })
            .await;
        let Some(put) = local.reply(address, created)? else {
            return Ok(None);
        };
        let ticket = put.ticket;
        let crc = match blocking(move || write(&put)).await {
            Ok(crc) => crc,
            Err(miss) => {
                // Release the reservation now rather than at the end of its lease.
                let abort = stub
                    .abort_local_put(pb::AbortLocalPutRequest { ticket })
                    .await;
                if let Err(s) = abort {
                    tracing::debug!(ticket, "aborting a local put: {}", s.message());
                }
                return local.missed(address, miss, Error::Protocol);
            }
        };
        let reply = stub
            .seal_local_put(pb::SealLocalPutRequest { ticket, crc32: crc })
            .await?
            .into_inner();
        check_put_reply(reply, size, crc).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(path: &std::path::Path) -> (u64, u64) {
        let m = std::fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn small_objects_remote_workers_and_a_disabled_client_are_streamed() {
        let on = LocalArenas::new(true);
        assert!(on.worth("w:1", LOCAL_MIN_BYTES));
        assert!(!on.worth("w:1", LOCAL_MIN_BYTES - 1));
        on.mark_remote("w:1", "test");
        assert!(!on.worth("w:1", 1 << 30));
        assert!(on.worth("w:2", 1 << 30));
        assert!(!LocalArenas::new(false).worth("w:2", 1 << 30));
    }

    #[test]
    fn only_the_file_the_worker_named_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let data = vec![5u8; 4096];
        std::fs::write(&path, &data).unwrap();
        let (device, inode) = identity(&path);
        let name = path.to_str().unwrap().to_string();
        let mut reply = pb::OpenObjectReply {
            path: name.clone(),
            device,
            inode,
            size: data.len() as u64,
            crc32: crc32fast::hash(&data),
        };
        assert_eq!(map_checked(&reply).ok().unwrap(), data);

        reply.inode += 1;
        assert!(matches!(map_checked(&reply), Err(Miss::NotLocal(_))));
        reply.inode -= 1;
        reply.path = format!("{name}.missing");
        assert!(matches!(map_checked(&reply), Err(Miss::NotLocal(_))));
        reply.path = name.clone();
        reply.crc32 ^= 1;
        assert!(matches!(map_checked(&reply), Err(Miss::Corrupt(_))));
        reply.crc32 ^= 1;
        reply.size += 1;
        assert!(matches!(map_checked(&reply), Err(Miss::Corrupt(_))));

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let via_link = pb::OpenObjectReply {
            path: link.to_str().unwrap().to_string(),
            size: data.len() as u64,
            ..reply
        };
        assert!(
            matches!(map_checked(&via_link), Err(Miss::NotLocal(_))),
            "symlinks are not followed"
        );
    }

    #[test]
    fn writes_land_in_the_reserved_file_with_their_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("reserved");
        std::fs::write(&target, b"").unwrap();
        let (device, inode) = identity(&target);
        let put = pb::CreateLocalPutReply {
            ticket: 1,
            path: target.to_str().unwrap().to_string(),
            device,
            inode,
            lease_ms: 1000,
        };
        let data: Vec<u8> = (0..(WRITE_STEP * 3 + 17))
            .map(|i| (i % 249) as u8)
            .collect();
        let crc = write_bytes(&put, &data).ok().unwrap();
        assert_eq!(crc, crc32fast::hash(&data));
        assert_eq!(std::fs::read(&target).unwrap(), data);

        let src = dir.path().join("src");
        std::fs::write(&src, &data).unwrap();
        std::fs::write(&target, b"").unwrap();
        let f = File::open(&src).unwrap();
        let crc = copy_file(&put, f, "src", data.len() as u64).ok().unwrap();
        assert_eq!(crc, crc32fast::hash(&data));
        assert_eq!(std::fs::read(&target).unwrap(), data);

        for announced in [data.len() as u64 - 1, data.len() as u64 + 1] {
            let f = File::open(&src).unwrap();
            assert!(matches!(
                copy_file(&put, f, "src", announced),
                Err(Miss::Changed(_))
            ));
        }
        let wrong = pb::CreateLocalPutReply {
            inode: inode + 1,
            ..put
        };
        assert!(matches!(write_bytes(&wrong, &data), Err(Miss::NotLocal(_))));
    }
}
