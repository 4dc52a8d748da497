"""The synchronous client: `xnai.connect(...)` returns a `Client` that submits tasks, moves
objects and creates actors. Behaviour mirrors the Rust SDK (client/sdk): every head call goes
through `_Heads.call`, which follows the Raft leader (the `xnai-leader` hint, else the next
head, with backoff, for up to 15 s) and resends the very same request, so a write's request id
makes a retried submit one task; a session with a lease renewed in the background owns the
client's objects; objects stream from and to workers in 1 MiB chunks with size and CRC-32
checks, or go through shared memory when the worker's arena is on this host; worker calls pass
a breaker per worker. Thread-safe: share one client between threads."""

from __future__ import annotations

import os
import threading
import time
import weakref
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import grpc

from . import _local, _objects, _wire
from . import actors as _actors
from ._breaker import Breakers
from .errors import Corrupt, InvalidArgument, ObjectLost, Timeout, Unavailable, XnaiError, from_rpc
from .refs import ObjectRef, WaitResult
from .v1 import common_pb2, head_pb2, head_pb2_grpc, worker_pb2, worker_pb2_grpc


def _channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=_wire.CHANNEL_OPTIONS)


class _Heads:
    """The connection to the head replicas; every head call takes `call`. Thread-safe."""

    def __init__(self, addresses: List[str], metadata: Any, connect_timeout: float) -> None:
        self.addresses = list(addresses)
        self._md = metadata
        self._lock = threading.Lock()
        self._channels = [_channel(a) for a in self.addresses]
        self._stubs = [head_pb2_grpc.HeadStub(ch) for ch in self._channels]
        self.current = 0
        self._connect(connect_timeout)

    def _connect(self, timeout: float) -> None:
        last = ""
        for i, a in enumerate(self.addresses):
            ch = self._channels[i]
            try:
                grpc.channel_ready_future(ch).result(timeout=timeout)
            except grpc.FutureTimeoutError:
                last = f"{a}: no connection within {timeout:.1f} s"
                continue
            self.current = i
            return
        raise Unavailable(f"cannot reach any head ({','.join(self.addresses)}): {last}")

    def _index(self, address: str) -> int:
        with self._lock:
            if address not in self.addresses:
                ch = _channel(address)
                self._channels.append(ch)
                self.addresses.append(address)
                self._stubs.append(head_pb2_grpc.HeadStub(ch))
            return self.addresses.index(address)

    def call(self, method: str, request: Any) -> Any:
        """One Head RPC, following the leader: on a retriable code it goes to the head the
        answer names, else the next one, backing off after each full round, for up to
        `FOLLOW_DEADLINE_S`. The same request (and request id) is sent every time."""
        deadline = time.monotonic() + _wire.FOLLOW_DEADLINE_S
        i = self.current
        misses = 0
        pause, most = _wire.FOLLOW_BACKOFF_S
        while True:
            try:
                reply = getattr(self._stubs[i], method)(request, metadata=self._md)
                self.current = i
                return reply
            except grpc.RpcError as e:
                if not _wire.retriable(e.code()):
                    raise from_rpc(e) from None
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"cannot reach any head ({','.join(self.addresses)}): "
                        f"{self.addresses[i]}: {e.details() or e.code().name}",
                        e.code(),
                    ) from None
                hint = _wire.leader_hint(e)
                j = self._index(hint) if hint else None
                i = j if j is not None and j != i else (i + 1) % len(self._stubs)
                misses += 1
            if misses % len(self._stubs) == 0:
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                pause = min(pause * 2, most)

    def close(self) -> None:
        for ch in self._channels:
            ch.close()


class _Workers:
    """One cached channel per worker address and kind of traffic. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: Dict[str, grpc.Channel] = {}
        self._stubs: Dict[str, Any] = {}

    def channel(self, address: str, kind: str) -> grpc.Channel:
        key = f"{kind}/{address}"
        with self._lock:
            ch = self._channels.get(key)
            if ch is None:
                ch = self._channels[key] = _channel(address)
            return ch

    def worker(self, address: str, kind: str = "objects") -> worker_pb2_grpc.WorkerStub:
        """The cached Worker stub (building one costs more than a call)."""
        key = f"w/{kind}/{address}"
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = worker_pb2_grpc.WorkerStub(self.channel(address, kind))
        return stub

    def local(self, address: str) -> worker_pb2_grpc.LocalArenaStub:
        key = f"l/{address}"
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._stubs[key] = worker_pb2_grpc.LocalArenaStub(self.channel(address, "objects"))
        return stub

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()
            self._stubs.clear()


class Client:
    """A connection to an xnai cluster. Use `xnai.connect`; close it (or use `with`) to
    release the session's objects at once, else they are freed when its lease runs out."""

    def __init__(
        self,
        heads: Union[str, Sequence[str], None] = None,
        token: Optional[str] = None,
        *,
        connect_timeout: float = 5.0,
        actor_start_timeout: float = 60.0,
        session_lease: Optional[float] = _wire.DEFAULT_SESSION_LEASE_S,
        shared_memory: Optional[bool] = None,
    ) -> None:
        self._md = _wire.auth_metadata(_wire.token_from(token))
        self._heads = _Heads(_wire.heads_from(heads), self._md, connect_timeout)
        self._workers = _Workers()
        self._breakers = Breakers()
        if shared_memory is None:
            shared_memory = os.environ.get("XNAI_SHARED_MEMORY", "1").strip() != "0"
        self._local = _local.LocalArenas(shared_memory)
        self.actor_start_timeout = actor_start_timeout
        self._session: Optional[str] = None
        self._released: List[str] = []
        self._rel_lock = threading.Lock()
        self._handles: Dict[str, Any] = {}
        self._closed = False
        if session_lease is not None:
            self._open_session(session_lease)

    # ----- lifecycle -----------------------------------------------------------------------

    @property
    def heads(self) -> List[str]:
        """The head addresses this client knows."""
        return list(self._heads.addresses)

    @property
    def session_id(self) -> Optional[str]:
        """The open session's id (None without one)."""
        return self._session

    def _head(self, method: str, request: Any) -> Any:
        return self._heads.call(method, request)

    def _open_session(self, lease: float) -> None:
        req = head_pb2.OpenSessionRequest(request_id=_wire.request_id(), lease_ms=int(lease * 1000))
        reply = self._head("OpenSession", req)
        self._session = reply.session_id
        every = max(reply.lease_ms, 300) / 3000.0
        t = threading.Thread(
            target=_renew_loop, args=(weakref.ref(self), every), name="xnai-session", daemon=True
        )
        t.start()

    def release(self, refs: Sequence[ObjectRef]) -> None:
        """Let go of objects: sent to the head within about 100 ms; each is freed once no live
        work or lineage needs it."""
        with self._rel_lock:
            self._released.extend(r.hex for r in refs)

    def _flush(self) -> None:
        with self._rel_lock:
            ids, self._released = self._released, []
        if not ids or not self._session:
            return
        for at in range(0, len(ids), 10_000):
            req = head_pb2.ReleaseObjectsRequest(session_id=self._session, object_ids=ids[at : at + 10_000])
            self._head("ReleaseObjects", req)

    def free(self, refs: Sequence[ObjectRef]) -> None:
        """Free objects now, whoever holds them."""
        self._head("ReleaseObjects", head_pb2.ReleaseObjectsRequest(object_ids=[r.hex for r in refs]))

    def close(self) -> None:
        """Flush releases, close the session (its objects are released) and the channels."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
            if self._session:
                sid, self._session = self._session, None
                self._head("KeepAlive", head_pb2.KeepAliveRequest(session_id=sid, close=True))
        finally:
            self._workers.close()
            self._heads.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ----- tasks ---------------------------------------------------------------------------

    def submit(
        self,
        function: str,
        *args: Any,
        max_retries: Optional[int] = None,
        retry_exceptions: bool = False,
        cpus: Optional[float] = None,
        memory_bytes: Optional[int] = None,
        labels: Optional[Dict[str, str]] = None,
    ) -> ObjectRef:
        """Submit a task running `function` on `args` (bytes, str, numbers inline; ObjectRefs
        by reference); returns its output object at once."""
        _wire.check_name("function name", function)
        req = head_pb2.SubmitTaskRequest(
            request_id=_wire.request_id(),
            function=function,
            args=_wire.to_args(args),
            options=_wire.task_options(max_retries, retry_exceptions, _wire.resources(cpus, memory_bytes, labels)),
            session_id=self._session or "",
        )
        return ObjectRef(self._head("SubmitTask", req).object_id)

    def wait(
        self, refs: Sequence[ObjectRef], num_returns: int = 1, timeout: Optional[float] = None
    ) -> WaitResult:
        """Wait until `num_returns` of `refs` are done (ready, failed or lost; 0 = all) or
        `timeout` seconds pass. Returns `(done, pending)`."""
        req = head_pb2.WaitObjectsRequest(
            object_ids=[r.hex for r in refs], num_ready=num_returns, timeout_ms=_wire.wait_ms(timeout)
        )
        reply = self._head("WaitObjects", req)
        return WaitResult([ObjectRef(x) for x in reply.done], [ObjectRef(x) for x in reply.pending])

    def object_info(self, ref: ObjectRef, timeout: float = 0.0) -> common_pb2.ObjectInfo:
        """What the head knows about an object (waiting up to `timeout` while it is pending)."""
        req = head_pb2.LocateObjectRequest(object_id=ref.hex, timeout_ms=_wire.wait_ms(timeout))
        return self._head("LocateObject", req)

    def status(self) -> head_pb2.ClusterStatusReply:
        """Heads, workers and counts."""
        return self._head("ClusterStatus", head_pb2.ClusterStatusRequest())

    # ----- objects -------------------------------------------------------------------------

    def _ready_info(self, ref: ObjectRef, deadline: Optional[float]) -> common_pb2.ObjectInfo:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            info = self.object_info(ref, _wire.MAX_HEAD_WAIT_S if left is None else left)
            if info.state == _objects.READY:
                return info
            err = _objects.final_state_error(ref, info)
            if err is not None:
                raise err
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"object {ref} is still pending after the timeout")

    def get(self, ref: Union[ObjectRef, Sequence[ObjectRef]], timeout: Optional[float] = None) -> Any:
        """The object's bytes (a list of them for a list of refs), waiting up to `timeout`
        seconds (None: no limit). Raises TaskFailed, ObjectLost, Timeout, Corrupt."""
        if not isinstance(ref, ObjectRef):
            deadline = None if timeout is None else time.monotonic() + timeout
            return [self.get(r, None if deadline is None else max(0.0, deadline - time.monotonic())) for r in ref]
        return self._get(ref, timeout, None)

    def _get(self, ref: ObjectRef, timeout: Optional[float], out: Optional[Any]) -> Any:
        """Fetch one copy (the next on failure, asking the head again while copies are
        unreachable); into memory, or streamed into the open binary file `out`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self._ready_info(ref, deadline)
            last: XnaiError = ObjectLost(f"object {ref} is ready but the head lists no copy")
            for loc in info.locations:
                if out is not None:
                    out.seek(0)
                    out.truncate()
                try:
                    return self._fetch_one(info, loc.address, out)
                except XnaiError as e:
                    last = e
            if not isinstance(last, Unavailable) or (deadline is not None and time.monotonic() >= deadline):
                raise last
            time.sleep(0.2)

    def _worker_rpc(self, address: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` (calls to the worker at `address`) through its breaker; gRPC errors mapped."""
        self._breakers.check(address)
        try:
            out = fn()
        except grpc.RpcError as e:
            if e.code() in _wire.NODE_FAILED:
                self._breakers.failure(address)
            raise from_rpc(e, f"worker {address}") from None
        self._breakers.success(address)
        return out

    def _fetch_one(self, info: common_pb2.ObjectInfo, address: str, out: Optional[Any] = None) -> Any:
        def fetch() -> Any:
            data = self._get_local(info, address)
            if data is not None:
                return data if out is None else out.write(data)
            check = _objects.ChunkCheck(info, address, None if out is None else out.write)
            stream = self._workers.worker(address).FetchObject(
                worker_pb2.FetchObjectRequest(object_id=info.object_id), metadata=self._md
            )
            for chunk in stream:
                check.add(chunk)
            return check.finish()

        return self._worker_rpc(address, fetch)

    def _get_local(self, info: common_pb2.ObjectInfo, address: str) -> Optional[bytes]:
        if not self._local.worth(address, info.size):
            return None
        try:
            f = self._workers.local(address).OpenObject(
                worker_pb2.OpenObjectRequest(object_id=info.object_id), metadata=self._md
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._local.mark_remote(address)
                return None
            raise
        if (f.size, f.crc32) != (info.size, info.crc32):
            raise Corrupt(
                f"object {info.object_id}: worker {address} holds {f.size} bytes crc32 {f.crc32:08x}, "
                f"head says {info.size} bytes crc32 {info.crc32:08x}"
            )
        try:
            return _local.map_checked(f.path, f.device, f.inode, f.size, f.crc32)
        except _local.NotLocal:
            self._local.mark_remote(address)
            return None
        except _local.Mismatch as e:
            raise Corrupt(f"object {info.object_id} is corrupt at {address}: {e}") from None

    def get_to_file(self, ref: ObjectRef, path: Union[str, os.PathLike], timeout: Optional[float] = None) -> int:
        """Writes the object to the file at `path` (streamed chunk by chunk, never whole in
        memory unless mapped); returns its size. A partial file is removed on failure."""
        try:
            with open(path, "w+b") as f:
                self._get(ref, timeout, f)
                return f.tell()
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise

    def _put_target(self, size: int) -> str:
        return self._head("PickPutTarget", head_pb2.PickPutTargetRequest(size=size)).address

    def put(self, data: Union[bytes, bytearray, memoryview, str]) -> ObjectRef:
        """Store `data` as a new object on the worker the head picks; returns its reference."""
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data).cast("B")
        size = len(view)
        address = self._put_target(size)
        ref = self._put_local(address, size, lambda put: _local.write_reserved(put.path, put.device, put.inode, view))
        if ref is not None:
            return ref
        crc = zlib.crc32(view)
        reply = self._worker_rpc(
            address,
            lambda: self._workers.worker(address).PutObject(_objects.put_chunks(view, crc), metadata=self._md),
        )
        return _objects.check_put_reply(reply, size, crc)

    def put_file(self, path: Union[str, os.PathLike]) -> ObjectRef:
        """Store the file at `path` as a new object, streamed in chunks (never whole in memory)."""
        path = os.fspath(path)
        size = os.stat(path).st_size
        address = self._put_target(size)
        ref = self._put_local(
            address, size, lambda put: _local.copy_file_into(put.path, put.device, put.inode, path, size)
        )
        if ref is not None:
            return ref
        crc: List[int] = [0, 0]
        reply = self._worker_rpc(
            address,
            lambda: self._workers.worker(address).PutObject(_objects.file_chunks(path, size, crc), metadata=self._md),
        )
        if crc[1] != size:
            raise InvalidArgument(f"{path} changed size while being read ({size} bytes, then {crc[1]})")
        return _objects.check_put_reply(reply, size, crc[0])

    def _put_local(self, address: str, size: int, write: Callable[[Any], int]) -> Optional[ObjectRef]:
        """A same-host put through the worker's reserved arena file, or None if not local."""
        if not self._local.worth(address, size):
            return None
        stub = self._workers.local(address)
        try:
            put = stub.CreateLocalPut(worker_pb2.CreateLocalPutRequest(size=size), metadata=self._md)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._local.mark_remote(address)
                return None
            raise from_rpc(e, f"worker {address}") from None
        try:
            crc = write(put)
        except BaseException as e:
            try:
                stub.AbortLocalPut(worker_pb2.AbortLocalPutRequest(ticket=put.ticket), metadata=self._md)
            except grpc.RpcError:
                pass  # the put's lease drops it anyway
            if isinstance(e, _local.NotLocal):
                self._local.mark_remote(address)
                return None
            if isinstance(e, ValueError):
                raise InvalidArgument(str(e)) from None
            raise
        try:
            reply = stub.SealLocalPut(worker_pb2.SealLocalPutRequest(ticket=put.ticket, crc32=crc), metadata=self._md)
        except grpc.RpcError as e:
            raise from_rpc(e, f"worker {address}") from None
        return _objects.check_put_reply(reply, size, crc)

    # ----- actors (xnai/actors.py holds the handle) ---------------------------------------

    # Methods defined beside the actor handle (actors.py).
    actor = _actors.actor
    add_documents = _actors.add_documents
    ask = _actors.ask
    embed = _actors.embed
    generate = _actors.generate
    get_actor = _actors.get_actor
    inference_actor = _actors.inference_actor
    kill_actor = _actors.kill_actor
    list_actors = _actors.list_actors
    retrieval_actor = _actors.retrieval_actor
    search = _actors.search


def _renew_loop(client_ref: "weakref.ref[Client]", every: float) -> None:
    """Flush releases every 100 ms and renew the lease every `every` seconds, until the client
    is garbage or closed (then the lease runs out and the head frees what it held)."""
    since = 0.0
    while True:
        time.sleep(0.1)
        since += 0.1
        c = client_ref()
        if c is None or c._closed or not c._session:
            return
        try:
            c._flush()
            if since >= every:
                since = 0.0
                c._head("KeepAlive", head_pb2.KeepAliveRequest(session_id=c._session))
        except XnaiError:
            pass  # retried next round; the lease has slack for a few misses
        del c


def connect(
    heads: Union[str, Sequence[str], None] = None, token: Optional[str] = None, **options: Any
) -> Client:
    """Connect to the cluster: `heads` as `"h1:7000,h2:7000"` or a list (default
    $XNAI_HEAD), `token` the cluster token (default $XNAI_TOKEN). Options: connect_timeout,
    actor_start_timeout, session_lease (seconds; None opens no session), shared_memory."""
    return Client(heads, token, **options)
