"""Same-host shared memory (Ray's plasma idea on xnai's tmpfs arenas), as the Rust SDK's
`local.rs`: when this process can open a worker's arena files, `get` maps the object's file and
checks its CRC-32 over the mapping, and `put` writes straight into a file the worker reserved
(`CreateLocalPut`), then seals it with the CRC-32. A file is used only if the one opened (no
symlinks followed) has the device and inode the worker named; otherwise (another container,
another user, no `LocalArena` service) the worker is remembered as remote and streamed from.
Blocking file work only; the clients run it (the async one in a thread)."""

from __future__ import annotations

import mmap
import os
import threading
import zlib
from typing import Set, Union

from ._wire import LOCAL_MIN_BYTES

#: Bytes checksummed then written per step of a local put.
WRITE_STEP = 4 * 1024 * 1024


class NotLocal(Exception):
    """This process cannot use that file: the worker is not local to it."""


class Mismatch(Exception):
    """The file is the worker's but its bytes are not the object's (size or CRC-32)."""


class LocalArenas:
    """Which workers' arenas this client reaches through shared memory. Thread-safe."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._remote: Set[str] = set()
        self._lock = threading.Lock()

    def worth(self, address: str, size: int) -> bool:
        """Whether to try shared memory for `size` bytes at `address`."""
        if not self.enabled or size < LOCAL_MIN_BYTES:
            return False
        with self._lock:
            return address not in self._remote

    def mark_remote(self, address: str) -> None:
        with self._lock:
            self._remote.add(address)


def _open_same(path: str, device: int, inode: int, write: bool) -> int:
    flags = (os.O_WRONLY if write else os.O_RDONLY) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise NotLocal(f"opening {path}: {e}") from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (device, inode):
        os.close(fd)
        raise NotLocal(f"{path} here is another file than the worker's")
    return fd


def map_checked(path: str, device: int, inode: int, size: int, crc32: int) -> bytes:
    """The object's bytes read through a mapping of its arena file, size and CRC-32 checked."""
    fd = _open_same(path, device, inode, write=False)
    try:
        actual = os.fstat(fd).st_size
        if actual != size:
            raise Mismatch(f"arena file holds {actual} bytes, the object has {size}")
        if size == 0:
            return b""
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:
            crc = zlib.crc32(m)
            if crc != crc32:
                raise Mismatch(f"crc32 {crc:08x}, expected {crc32:08x}")
            return m[:]
    finally:
        os.close(fd)


def write_reserved(path: str, device: int, inode: int, data: Union[bytes, memoryview]) -> int:
    """Writes `data` into the reserved file from offset 0; returns its CRC-32."""
    fd = _open_same(path, device, inode, write=True)
    view = memoryview(data)
    crc = 0
    try:
        at = 0
        while at < len(view):
            step = view[at : at + WRITE_STEP]
            crc = zlib.crc32(step, crc)
            done = 0
            while done < len(step):
                done += os.pwrite(fd, step[done:], at + done)
            at += len(step)
    finally:
        os.close(fd)
    return crc


def copy_file_into(path: str, device: int, inode: int, src: str, size: int) -> int:
    """Copies the file `src` (`size` bytes) into the reserved file; returns its CRC-32."""
    fd = _open_same(path, device, inode, write=True)
    crc = 0
    at = 0
    try:
        with open(src, "rb", buffering=0) as f:
            while True:
                buf = f.read(WRITE_STEP)
                if not buf:
                    break
                if at + len(buf) > size:
                    raise ValueError(f"{src} changed size while being read ({size} bytes, then more)")
                crc = zlib.crc32(buf, crc)
                os.pwrite(fd, buf, at)
                at += len(buf)
    finally:
        os.close(fd)
    if at != size:
        raise ValueError(f"{src} changed size while being read ({size} bytes, then {at})")
    return crc
