"""Object message helpers shared by both clients: put chunk streams, checks of fetched chunks
and put replies, and what an object's state means for a reader. Pure: no I/O."""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterable, Iterator, List, Optional, Union

from ._wire import CHUNK_BYTES
from .errors import Corrupt, ObjectLost, TaskFailed, XnaiError
from .refs import ObjectRef
from .v1 import common_pb2, worker_pb2

READY = common_pb2.OBJECT_STATE_READY
PENDING = common_pb2.OBJECT_STATE_PENDING


def header(size: int, crc32: Optional[int]) -> worker_pb2.PutObjectChunk:
    h = worker_pb2.PutObjectHeader(size=size)
    if crc32 is not None:
        h.crc32 = crc32
    return worker_pb2.PutObjectChunk(header=h)


def put_chunks(data: Union[bytes, memoryview], crc32: int) -> Iterator[worker_pb2.PutObjectChunk]:
    """The PutObject stream for `data`: a header with size and CRC-32, then 1 MiB chunks."""
    view = memoryview(data)
    yield header(len(view), crc32)
    for at in range(0, len(view), CHUNK_BYTES):
        yield worker_pb2.PutObjectChunk(data=bytes(view[at : at + CHUNK_BYTES]))


def check_put_reply(reply: worker_pb2.PutObjectReply, size: int, crc32: int) -> ObjectRef:
    if reply.size != size or reply.crc32 != crc32:
        raise Corrupt(
            f"worker stored {reply.size} bytes with crc32 {reply.crc32:08x}, "
            f"sent {size} bytes with crc32 {crc32:08x}"
        )
    return ObjectRef(reply.object_id)


def final_state_error(ref: ObjectRef, info: common_pb2.ObjectInfo) -> Optional[XnaiError]:
    """The error a reader gets for an object that will never be readable, else None."""
    s = info.state
    if s == common_pb2.OBJECT_STATE_FAILED:
        return TaskFailed(info.error)
    if s == common_pb2.OBJECT_STATE_LOST:
        return ObjectLost(f"object lost: {info.error}")
    if s == common_pb2.OBJECT_STATE_FREED:
        return ObjectLost(f"object {ref} was freed")
    return None


class ChunkCheck:
    """Checks a FetchObject stream chunk by chunk: offsets in order, no more than announced,
    and at the end the size and CRC-32 against the head's."""

    def __init__(
        self, info: common_pb2.ObjectInfo, address: str, sink: Optional[Callable[[bytes], Any]] = None
    ) -> None:
        self.info = info
        self.sink = sink
        self.address = address
        self.got = 0
        self.crc = 0
        self.total: Optional[int] = None
        self.expect_crc = info.crc32
        self.parts: List[bytes] = []

    def _corrupt(self, what: str) -> Corrupt:
        return Corrupt(f"object {self.info.object_id} is corrupt from {self.address}: {what}")

    def add(self, chunk: worker_pb2.ObjectChunk) -> None:
        if self.total is None:
            self.total = chunk.total_size
            self.expect_crc = chunk.crc32
        if chunk.offset != self.got:
            raise self._corrupt(f"chunk at offset {chunk.offset} where {self.got} was expected")
        n = len(chunk.data)
        if self.got + n > self.total:
            raise self._corrupt(f"more than the announced {self.total} bytes")
        self.crc = zlib.crc32(chunk.data, self.crc)
        self.got += n
        if self.sink is not None:
            self.sink(chunk.data)
        else:
            self.parts.append(chunk.data)

    def finish(self) -> bytes:
        total = self.info.size if self.total is None else self.total
        if self.got != total or total != self.info.size:
            raise self._corrupt(f"received {self.got} bytes of {total} (head says {self.info.size})")
        if self.crc != self.expect_crc:
            raise self._corrupt(f"crc32 {self.crc:08x}, expected {self.expect_crc:08x}")
        data = b"".join(self.parts)
        self.parts = []
        return data


def file_chunks(path: str, size: int, crc_out: List[int]) -> Iterable[worker_pb2.PutObjectChunk]:
    """The PutObject stream for a file: a header without CRC, then 1 MiB chunks read as sent;
    the CRC-32 of what was read is left in `crc_out[0]`, its length in `crc_out[1]`."""
    yield header(size, None)
    crc = 0
    n = 0
    with open(path, "rb") as f:
        while True:
            buf = f.read(CHUNK_BYTES)
            if not buf:
                break
            crc = zlib.crc32(buf, crc)
            n += len(buf)
            crc_out[:] = [crc, n]
            yield worker_pb2.PutObjectChunk(data=buf)
    crc_out[:] = [crc, n]
