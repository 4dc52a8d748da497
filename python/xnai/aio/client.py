"""The asyncio client (`xnai.aio`), for FastAPI and other asyncio services: the same API and
behaviour as the synchronous `xnai.Client` (leader following with the same request resent,
sessions renewed by a background task, chunked streams or same-host shared memory with CRC-32
checks, a breaker per worker) on `grpc.aio` channels. Create it inside the event loop that uses
it (`await xnai.aio.connect(...)`, e.g. in a FastAPI lifespan); blocking file work runs in
threads."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import grpc
import grpc.aio

from .. import _local, _objects, _wire
from . import actors as _actors
from .._breaker import Breakers
from ..errors import Corrupt, InvalidArgument, ObjectLost, Timeout, Unavailable, XnaiError, from_rpc
from ..refs import ObjectRef, WaitResult
from ..v1 import common_pb2, head_pb2, head_pb2_grpc, worker_pb2, worker_pb2_grpc


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=_wire.CHANNEL_OPTIONS)


class _Heads:
    """The head replicas; every head call takes `call` (leader following, as the sync one)."""

    def __init__(self, addresses: List[str], metadata: Any) -> None:
        self.addresses = list(addresses)
        self._md = metadata
        self._channels = [_channel(a) for a in self.addresses]
        self._stubs = [head_pb2_grpc.HeadStub(ch) for ch in self._channels]
        self.current = 0

    async def connect(self, timeout: float) -> None:
        last = ""
        for i, a in enumerate(self.addresses):
            try:
                await asyncio.wait_for(self._channels[i].channel_ready(), timeout)
            except asyncio.TimeoutError:
                last = f"{a}: no connection within {timeout:.1f} s"
                continue
            self.current = i
            return
        raise Unavailable(f"cannot reach any head ({','.join(self.addresses)}): {last}")

    def _index(self, address: str) -> int:
        if address not in self.addresses:
            ch = _channel(address)
            self._channels.append(ch)
            self.addresses.append(address)
            self._stubs.append(head_pb2_grpc.HeadStub(ch))
        return self.addresses.index(address)

    async def call(self, method: str, request: Any) -> Any:
        deadline = time.monotonic() + _wire.FOLLOW_DEADLINE_S
        i = self.current
        misses = 0
        pause, most = _wire.FOLLOW_BACKOFF_S
        while True:
            try:
                reply = await getattr(self._stubs[i], method)(request, metadata=self._md)
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
                await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                pause = min(pause * 2, most)

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()


class _Workers:
    """One cached channel per worker address and kind of traffic (one event loop)."""

    def __init__(self) -> None:
        self._channels: Dict[str, grpc.aio.Channel] = {}
        self._stubs: Dict[str, Any] = {}

    def channel(self, address: str, kind: str) -> grpc.aio.Channel:
        key = f"{kind}/{address}"
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

    async def close(self) -> None:
        chans, self._channels, self._stubs = list(self._channels.values()), {}, {}
        for ch in chans:
            await ch.close()


class AsyncClient:
    """An asyncio connection to an xnai cluster; see `xnai.Client` for the semantics. Use
    `await xnai.aio.connect(...)`; `await c.close()` or `async with`."""

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
        self._heads = _Heads(_wire.heads_from(heads), self._md)
        self._workers = _Workers()
        self._breakers = Breakers()
        if shared_memory is None:
            shared_memory = os.environ.get("XNAI_SHARED_MEMORY", "1").strip() != "0"
        self._local = _local.LocalArenas(shared_memory)
        self._connect_timeout = connect_timeout
        self._lease = session_lease
        self.actor_start_timeout = actor_start_timeout
        self._session: Optional[str] = None
        self._released: List[str] = []
        self._handles: Dict[str, Any] = {}
        self._closed = False
        self._renewer: Optional[asyncio.Task] = None

    async def _start(self) -> "AsyncClient":
        await self._heads.connect(self._connect_timeout)
        if self._lease is not None:
            req = head_pb2.OpenSessionRequest(request_id=_wire.request_id(), lease_ms=int(self._lease * 1000))
            reply = await self._head("OpenSession", req)
            self._session = reply.session_id
            every = max(reply.lease_ms, 300) / 3000.0
            self._renewer = asyncio.get_running_loop().create_task(_renew_loop(weakref.ref(self), every))
        return self

    @property
    def heads(self) -> List[str]:
        return list(self._heads.addresses)

    @property
    def session_id(self) -> Optional[str]:
        return self._session

    async def _head(self, method: str, request: Any) -> Any:
        return await self._heads.call(method, request)

    def release(self, refs: Sequence[ObjectRef]) -> None:
        """Let go of objects (sent within about 100 ms)."""
        self._released.extend(r.hex for r in refs)

    async def _flush(self) -> None:
        ids, self._released = self._released, []
        if not ids or not self._session:
            return
        for at in range(0, len(ids), 10_000):
            req = head_pb2.ReleaseObjectsRequest(session_id=self._session, object_ids=ids[at : at + 10_000])
            await self._head("ReleaseObjects", req)

    async def free(self, refs: Sequence[ObjectRef]) -> None:
        """Free objects now, whoever holds them."""
        await self._head("ReleaseObjects", head_pb2.ReleaseObjectsRequest(object_ids=[r.hex for r in refs]))

    async def close(self) -> None:
        """Flush releases, close the session and the channels."""
        if self._closed:
            return
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
        try:
            await self._flush()
            if self._session:
                sid, self._session = self._session, None
                await self._head("KeepAlive", head_pb2.KeepAliveRequest(session_id=sid, close=True))
        finally:
            await self._workers.close()
            await self._heads.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ----- tasks ---------------------------------------------------------------------------

    async def submit(
        self,
        function: str,
        *args: Any,
        max_retries: Optional[int] = None,
        retry_exceptions: bool = False,
        cpus: Optional[float] = None,
        memory_bytes: Optional[int] = None,
        labels: Optional[Dict[str, str]] = None,
    ) -> ObjectRef:
        _wire.check_name("function name", function)
        req = head_pb2.SubmitTaskRequest(
            request_id=_wire.request_id(),
            function=function,
            args=_wire.to_args(args),
            options=_wire.task_options(max_retries, retry_exceptions, _wire.resources(cpus, memory_bytes, labels)),
            session_id=self._session or "",
        )
        return ObjectRef((await self._head("SubmitTask", req)).object_id)

    async def wait(
        self, refs: Sequence[ObjectRef], num_returns: int = 1, timeout: Optional[float] = None
    ) -> WaitResult:
        req = head_pb2.WaitObjectsRequest(
            object_ids=[r.hex for r in refs], num_ready=num_returns, timeout_ms=_wire.wait_ms(timeout)
        )
        reply = await self._head("WaitObjects", req)
        return WaitResult([ObjectRef(x) for x in reply.done], [ObjectRef(x) for x in reply.pending])

    async def object_info(self, ref: ObjectRef, timeout: float = 0.0) -> common_pb2.ObjectInfo:
        req = head_pb2.LocateObjectRequest(object_id=ref.hex, timeout_ms=_wire.wait_ms(timeout))
        return await self._head("LocateObject", req)

    async def status(self) -> head_pb2.ClusterStatusReply:
        return await self._head("ClusterStatus", head_pb2.ClusterStatusRequest())

    # ----- objects -------------------------------------------------------------------------

    async def _ready_info(self, ref: ObjectRef, deadline: Optional[float]) -> common_pb2.ObjectInfo:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            info = await self.object_info(ref, _wire.MAX_HEAD_WAIT_S if left is None else left)
            if info.state == _objects.READY:
                return info
            err = _objects.final_state_error(ref, info)
            if err is not None:
                raise err
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"object {ref} is still pending after the timeout")

    async def get(self, ref: Union[ObjectRef, Sequence[ObjectRef]], timeout: Optional[float] = None) -> Any:
        """The object's bytes (a list for a list of refs, fetched concurrently)."""
        if not isinstance(ref, ObjectRef):
            return list(await asyncio.gather(*(self.get(r, timeout) for r in ref)))
        return await self._get(ref, timeout, None)

    async def _get(self, ref: ObjectRef, timeout: Optional[float], out: Optional[Any]) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = await self._ready_info(ref, deadline)
            last: XnaiError = ObjectLost(f"object {ref} is ready but the head lists no copy")
            for loc in info.locations:
                if out is not None:
                    out.seek(0)
                    out.truncate()
                try:
                    return await self._fetch_one(info, loc.address, out)
                except XnaiError as e:
                    last = e
            if not isinstance(last, Unavailable) or (deadline is not None and time.monotonic() >= deadline):
                raise last
            await asyncio.sleep(0.2)

    async def get_to_file(self, ref: ObjectRef, path: Union[str, os.PathLike], timeout: Optional[float] = None) -> int:
        """Writes the object to the file at `path`, chunk by chunk; returns its size."""
        try:
            with open(path, "w+b") as f:
                await self._get(ref, timeout, f)
                return f.tell()
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise

    async def _worker_rpc(self, address: str, fn: Callable[[], Any]) -> Any:
        self._breakers.check(address)
        try:
            out = await fn()
        except grpc.RpcError as e:
            if e.code() in _wire.NODE_FAILED:
                self._breakers.failure(address)
            raise from_rpc(e, f"worker {address}") from None
        self._breakers.success(address)
        return out

    async def _fetch_one(self, info: common_pb2.ObjectInfo, address: str, out: Optional[Any] = None) -> Any:
        async def fetch() -> Any:
            data = await self._get_local(info, address)
            if data is not None:
                return data if out is None else out.write(data)
            check = _objects.ChunkCheck(info, address, None if out is None else out.write)
            call = self._workers.worker(address).FetchObject(
                worker_pb2.FetchObjectRequest(object_id=info.object_id), metadata=self._md
            )
            async for chunk in call:
                check.add(chunk)
            return check.finish()

        return await self._worker_rpc(address, fetch)

    async def _get_local(self, info: common_pb2.ObjectInfo, address: str) -> Optional[bytes]:
        if not self._local.worth(address, info.size):
            return None
        try:
            f = await self._workers.local(address).OpenObject(
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
            return await asyncio.to_thread(_local.map_checked, f.path, f.device, f.inode, f.size, f.crc32)
        except _local.NotLocal:
            self._local.mark_remote(address)
            return None
        except _local.Mismatch as e:
            raise Corrupt(f"object {info.object_id} is corrupt at {address}: {e}") from None

    async def _put_target(self, size: int) -> str:
        return (await self._head("PickPutTarget", head_pb2.PickPutTargetRequest(size=size))).address

    async def put(self, data: Union[bytes, bytearray, memoryview, str]) -> ObjectRef:
        """Store `data` as a new object; returns its reference."""
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data).cast("B")
        size = len(view)
        address = await self._put_target(size)
        ref = await self._put_local(address, size, lambda put: _local.write_reserved(put.path, put.device, put.inode, view))
        if ref is not None:
            return ref
        crc = zlib.crc32(view)
        stub = self._workers.worker(address)
        reply = await self._worker_rpc(
            address, lambda: stub.PutObject(_objects.put_chunks(view, crc), metadata=self._md)
        )
        return _objects.check_put_reply(reply, size, crc)

    async def put_file(self, path: Union[str, os.PathLike]) -> ObjectRef:
        """Store the file at `path` as a new object, streamed in chunks."""
        path = os.fspath(path)
        size = os.stat(path).st_size
        address = await self._put_target(size)
        ref = await self._put_local(
            address, size, lambda put: _local.copy_file_into(put.path, put.device, put.inode, path, size)
        )
        if ref is not None:
            return ref
        crc: List[int] = [0, 0]
        stub = self._workers.worker(address)
        reply = await self._worker_rpc(
            address, lambda: stub.PutObject(_objects.file_chunks(path, size, crc), metadata=self._md)
        )
        if crc[1] != size:
            raise InvalidArgument(f"{path} changed size while being read ({size} bytes, then {crc[1]})")
        return _objects.check_put_reply(reply, size, crc[0])

    async def _put_local(self, address: str, size: int, write: Callable[[Any], int]) -> Optional[ObjectRef]:
        if not self._local.worth(address, size):
            return None
        stub = self._workers.local(address)
        try:
            put = await stub.CreateLocalPut(worker_pb2.CreateLocalPutRequest(size=size), metadata=self._md)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._local.mark_remote(address)
                return None
            raise from_rpc(e, f"worker {address}") from None
        try:
            crc = await asyncio.to_thread(write, put)
        except BaseException as e:
            try:
                await stub.AbortLocalPut(worker_pb2.AbortLocalPutRequest(ticket=put.ticket), metadata=self._md)
            except grpc.RpcError:
                pass  # the put's lease drops it anyway
            if isinstance(e, _local.NotLocal):
                self._local.mark_remote(address)
                return None
            if isinstance(e, ValueError):
                raise InvalidArgument(str(e)) from None
            raise
        try:
            reply = await stub.SealLocalPut(worker_pb2.SealLocalPutRequest(ticket=put.ticket, crc32=crc), metadata=self._md)
        except grpc.RpcError as e:
            raise from_rpc(e, f"worker {address}") from None
        return _objects.check_put_reply(reply, size, crc)

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


async def _renew_loop(client_ref: "weakref.ref[AsyncClient]", every: float) -> None:
    since = 0.0
    while True:
        await asyncio.sleep(0.1)
        since += 0.1
        c = client_ref()
        if c is None or c._closed or not c._session:
            return
        try:
            await c._flush()
            if since >= every:
                since = 0.0
                await c._head("KeepAlive", head_pb2.KeepAliveRequest(session_id=c._session))
        except XnaiError:
            pass  # retried next round; the lease has slack for a few misses
        del c


async def connect(
    heads: Union[str, Sequence[str], None] = None, token: Optional[str] = None, **options: Any
) -> AsyncClient:
    """Connect from inside the running event loop; see `xnai.connect`."""
    return await AsyncClient(heads, token, **options)._start()
