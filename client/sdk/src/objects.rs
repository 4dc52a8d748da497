//! Object transfer: `get` (locate at the head, then stream from a worker holding a copy,
//! checking offsets, total size and CRC-32, falling back to the next copy) and `put` (pick a
//! target worker, then stream a header and 1 MiB chunks). Files are streamed in chunks so a
//! 64 MiB+ object is never held in memory whole. A worker on this host is read and written
//! through shared memory instead when it can be ([`super::local`]).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio_stream::wrappers::ReceiverStream;
use xnai_proto::limits::CHUNK_BYTES;
use xnai_proto::pb::{self, put_object_chunk::Kind};

use super::error::{Error, Result};
use super::link::head_call;
use super::types::{ObjectInfo, ObjectRef, ObjectState};
use super::{Client, MAX_HEAD_WAIT, convert};

/// Where fetched chunks go. `restart` rewinds for another attempt and says whether it could.
pub(crate) trait Sink {
    fn begin(&mut self, total: u64);
    fn write(&mut self, data: Bytes) -> impl Future<Output = Result<()>> + Send;
    fn restart(&mut self) -> impl Future<Output = Result<bool>> + Send;
}

/// Collects an object in memory; a single-chunk object is returned without copying.
#[derive(Default)]
pub(crate) struct MemSink {
    first: Option<Bytes>,
    buf: Vec<u8>,
    total: usize,
}

impl MemSink {
    pub(crate) fn into_bytes(mut self) -> Bytes {
        match self.first.take() {
            Some(v) if self.buf.is_empty() => v,
            _ => Bytes::from(self.buf),
        }
    }
}

impl Sink for MemSink {
    fn begin(&mut self, total: u64) {
        self.total = usize::try_from(total).unwrap_or(0);
    }
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.first.is_none() && self.buf.is_empty() {
            self.first = Some(data);
            return Ok(());
        }
        if let Some(first) = self.first.take() {
            self.buf.reserve(self.total.max(first.len() + data.len()));
            self.buf.extend_from_slice(&first);
        }
        self.buf.extend_from_slice(&data);
        Ok(())
    }
    async fn restart(&mut self) -> Result<bool> {
        self.first = None;
        self.buf.clear();
        Ok(true)
    }
}

/// Streams into any writer; can retry on another copy only if nothing was written yet.
struct WriterSink<'a, W> {
    w: &'a mut W,
    written: u64,
}

impl<W: AsyncWrite + Unpin + Send> Sink for WriterSink<'_, W> {
    fn begin(&mut self, _total: u64) {}
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.w
            .write_all(&data)
            .await
            .map_err(|e| Error::io("writing object data", e))?;
        self.written += data.len() as u64;
        Ok(())
    }
    async fn restart(&mut self) -> Result<bool> {
        Ok(self.written == 0)
    }
}

/// Streams into a file, truncating it to retry on another copy.
struct FileSink {
    f: tokio::fs::File,
    path: String,
}

impl Sink for FileSink {
    fn begin(&mut self, _total: u64) {}
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.f
            .write_all(&data)
            .await
            .map_err(|e| Error::io(format!("writing {}", self.path), e))
    }
    async fn restart(&mut self) -> Result<bool> {
        let ctx = || format!("rewinding {}", self.path);
        self.f.set_len(0).await.map_err(|e| Error::io(ctx(), e))?;
        self.f.rewind().await.map_err(|e| Error::io(ctx(), e))?;
        Ok(true)
    }
}

impl Client {
    /// Waits up to `timeout` for the object, then returns its bytes. A failed task gives
    /// [`Error::TaskFailed`], a lost object [`Error::ObjectLost`], still pending [`Error::Timeout`].
    pub async fn get(&self, object: &ObjectRef, timeout: Duration) -> Result<Bytes> {
        let mut sink = MemSink::default();
        self.get_into(object, timeout, &mut sink).await?;
        Ok(sink.into_bytes())
    }

    /// Like [`Client::get`] but streams the bytes into `writer` chunk by chunk; returns how many
    /// bytes were written. Falls back to another copy only if nothing was written yet.
    pub async fn get_to_writer<W: AsyncWrite + Unpin + Send>(
        &self,
        object: &ObjectRef,
        timeout: Duration,
        writer: &mut W,
    ) -> Result<u64> {
        let mut sink = WriterSink {
            w: writer,
            written: 0,
        };
        self.get_into(object, timeout, &mut sink).await?;
        sink.w
            .flush()
            .await
            .map_err(|e| Error::io("flushing object data", e))?;
        Ok(sink.written)
    }

    /// Like [`Client::get`] but streams the bytes into the file at `path` (created or
    /// truncated); returns the object's size. A partial file is removed on failure.
    pub async fn get_to_file(
        &self,
        object: &ObjectRef,
        timeout: Duration,
        path: &Path,
    ) -> Result<u64> {
        let name = path.display().to_string();
        let f = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::io(format!("creating {name}"), e))?;
        let mut sink = FileSink {
            f,
            path: name.clone(),
        };
        let res = async {
            let info = self.get_into(object, timeout, &mut sink).await?;
            sink.f
                .flush()
                .await
                .map_err(|e| Error::io(format!("writing {name}"), e))?;
            Ok(info.size)
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        res
    }

    /// Waits until the object is ready (or failed, lost, timed out) and returns its info.
    pub(crate) async fn ready_info(
        &self,
        object: &ObjectRef,
        timeout: Duration,
    ) -> Result<ObjectInfo> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(MAX_HEAD_WAIT, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let info = self.locate(object, left).await?;
            match info.state {
                ObjectState::Ready => return Ok(info),
                ObjectState::Failed => return Err(Error::TaskFailed(info.error)),
                ObjectState::Lost => return Err(Error::ObjectLost(info.error)),
                ObjectState::Freed => {
                    return Err(Error::ObjectLost(format!("object {object} was freed")));
                }
                ObjectState::Pending | ObjectState::Unknown => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout(format!(
                    "object {object} is still pending after {:.1} s",
                    timeout.as_secs_f64()
                )));
            }
        }
    }

    /// Waits until the object is ready and streams one copy into `sink`. When every listed
    /// copy is unreachable (its worker just died), asks the head again until `timeout`: the
    /// head declares the worker dead and rebuilds the object from lineage, or says it is lost.
    async fn get_into<S: Sink>(
        &self,
        object: &ObjectRef,
        timeout: Duration,
        sink: &mut S,
    ) -> Result<ObjectInfo> {
        let deadline = Instant::now().checked_add(timeout);
        let mut started = false;
        loop {
            let left = deadline.map_or(MAX_HEAD_WAIT, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let info = self.ready_info(object, left).await?;
            let mut last = Error::ObjectLost(format!(
                "object {object} is ready but the head lists no copy"
            ));
            for loc in &info.locations {
                if started && !sink.restart().await? {
                    return Err(last);
                }
                started = true;
                let fetch = async {
                    if let Some(bytes) = self.get_local(&info, &loc.address).await? {
                        sink.begin(info.size);
                        return sink.write(bytes).await;
                    }
                    self.fetch_from(&info, &loc.address, sink).await
                };
                match self.inner.breakers.call(&loc.address, fetch).await {
                    Ok(()) => return Ok(info),
                    Err(e @ Error::Io { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!(object = %object, address = %loc.address, "fetch failed: {e}");
                        last = e;
                    }
                }
            }
            if !last.is_unavailable() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Streams one copy from `address` into `sink`, checking offsets, size and CRC-32.
    async fn fetch_from<S: Sink>(
        &self,
        info: &ObjectInfo,
        address: &str,
        sink: &mut S,
    ) -> Result<()> {
        let corrupt = |what: String| Error::Corrupt {
            object: info.object_id.hex(),
            address: address.to_string(),
            what,
        };
        let mut stub = self.inner.workers.stub(address)?;
        let req = pb::FetchObjectRequest {
            object_id: info.object_id.hex(),
        };
        let mut stream = stub.fetch_object(req).await?.into_inner();
        let mut hasher = crc32fast::Hasher::new();
        let mut got: u64 = 0;
        let mut expect: Option<(u64, u32)> = None;
        while let Some(chunk) = stream.message().await? {
            let (total, _) = *expect.get_or_insert_with(|| {
                sink.begin(chunk.total_size);
                (chunk.total_size, chunk.crc32)
            });
            if chunk.offset != got {
                return Err(corrupt(format!(
                    "chunk at offset {} where {got} was expected",
                    chunk.offset
                )));
            }
            let len = chunk.data.len() as u64;
            if got + len > total {
                return Err(corrupt(format!("more than the announced {total} bytes")));
            }
            hasher.update(&chunk.data);
            got += len;
            sink.write(chunk.data).await?;
        }
        let (total, crc) = expect.unwrap_or((info.size, info.crc32));
        if got != total || total != info.size {
            return Err(corrupt(format!(
                "received {got} bytes of {total} (head says {})",
                info.size
            )));
        }
        let actual = hasher.finalize();
        if actual != crc {
            return Err(corrupt(format!("crc32 {actual:08x}, expected {crc:08x}")));
        }
        Ok(())
    }

    /// Stores `data` as a new object on the worker the head picks; returns its reference.
    pub async fn put(&self, data: Bytes) -> Result<ObjectRef> {
        let size = data.len() as u64;
        let (address, mut stub) = self.put_target(size).await?;
        if let Some(stored) = self.put_local(&address, &data).await? {
            return Ok(stored);
        }
        let crc = crc32fast::hash(&data);
        let stream =
            tokio_stream::iter(std::iter::once(header(size, Some(crc))).chain(chunked(data)));
        let reply = stub.put_object(stream).await?.into_inner();
        check_put_reply(reply, size, crc)
    }

    /// Stores the file at `path` as a new object, streaming it in chunks (never whole in memory).
    pub async fn put_file(&self, path: &Path) -> Result<ObjectRef> {
        let name = path.display().to_string();
        let file =
            std::fs::File::open(path).map_err(|e| Error::io(format!("opening {name}"), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {name}"), e))?
            .len();
        let (address, mut stub) = self.put_target(size).await?;
        let local_src = file
            .try_clone()
            .map_err(|e| Error::io(format!("opening {name}"), e))?;
        if let Some(stored) = self
            .put_file_local(&address, local_src, &name, size)
            .await?
        {
            return Ok(stored);
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let reader_name = name.clone();
        let reader = tokio::task::spawn_blocking(move || read_chunks(file, &reader_name, tx));
        let data = ReceiverStream::new(rx).map(|v| pb::PutObjectChunk {
            kind: Some(Kind::Data(Bytes::from(v))),
        });
        let stream = futures::stream::iter([header(size, None)]).chain(data);
        let sent = stub.put_object(stream).await;
        // A worker that refuses (arena full, bad header) closes the stream early and the reader
        // stops short: its status is the real cause, so it goes first.
        let sent = sent?;
        let (crc, read) = reader
            .await
            .map_err(|e| Error::io(format!("reading {name}"), std::io::Error::other(e)))??;
        if read != size {
            return Err(Error::InvalidArgument(format!(
                "{name} changed size while being read ({size} bytes, then {read})"
            )));
        }
        check_put_reply(sent.into_inner(), size, crc)
    }

    /// The worker the head picks for a new object of `size` bytes: its address and a stub.
    async fn put_target(&self, size: u64) -> Result<(String, super::link::WorkerStub)> {
        let loc = head_call!(
            self.inner.head,
            pick_put_target,
            pb::PickPutTargetRequest { size }
        )
        .await?;
        let stub = self.inner.workers.stub(&loc.address)?;
        Ok((loc.address, stub))
    }
}

/// `data` as put chunks of at most CHUNK_BYTES, each a slice of the same buffer (no copies).
pub(super) fn chunked(data: Bytes) -> impl Iterator<Item = pb::PutObjectChunk> {
    (0..data.len()).step_by(CHUNK_BYTES).map(move |at| {
        let end = (at + CHUNK_BYTES).min(data.len());
        pb::PutObjectChunk {
            kind: Some(Kind::Data(data.slice(at..end))),
        }
    })
}

fn header(size: u64, crc32: Option<u32>) -> pb::PutObjectChunk {
    pb::PutObjectChunk {
        kind: Some(Kind::Header(pb::PutObjectHeader {
            size,
            crc32,
            object_id: String::new(),
        })),
    }
}

/// Reads `file` in CHUNK_BYTES pieces into `tx`; returns its CRC-32 and length.
fn read_chunks(
    mut file: std::fs::File,
    name: &str,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<(u32, u64)> {
    use std::io::Read;
    let mut hasher = crc32fast::Hasher::new();
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut n = 0;
        while n < buf.len() {
            match file.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading {name}"), e)),
            }
        }
        if n == 0 {
            break;
        }
        buf.truncate(n);
        hasher.update(&buf);
        total += n as u64;
        if tx.blocking_send(buf).is_err() {
            break;
        }
    }
    Ok((hasher.finalize(), total))
}

pub(super) fn check_put_reply(reply: pb::PutObjectReply, size: u64, crc: u32) -> Result<ObjectRef> {
    if reply.size != size || reply.crc32 != crc {
        return Err(Error::Protocol(format!(
            "worker stored {} bytes with crc32 {:08x}, sent {size} bytes with crc32 {crc:08x}",
            reply.size, reply.crc32
        )));
    }
    Ok(ObjectRef::new(convert::object_id(&reply.object_id)?))
}
