"""Actors for `xnai.aio`: the same rules as `xnai.actors` (straight calls to the hosting
worker, breaker per worker, waiting for a restart when a call never reached a dead worker,
`max_task_retries` otherwise) with `await`, plus async streaming `generate`, `embed`,
`search` and `ask`. These functions are `AsyncClient` methods."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, List, Optional, Sequence, Union

import grpc

from .. import _rag, _wire
from ..errors import ActorDead, ActorMethodError, InvalidArgument, Timeout, XnaiError, from_rpc
from ..refs import Answer, GenerateStats, Hit
from ..v1 import common_pb2, head_pb2, worker_pb2

if TYPE_CHECKING:
    from .client import AsyncClient

ALIVE = common_pb2.ACTOR_STATE_ALIVE
DEAD = common_pb2.ACTOR_STATE_DEAD


class AsyncActor:
    """A live actor for asyncio callers."""

    def __init__(self, client: "AsyncClient", info: head_pb2.ActorInfo, max_task_retries: int) -> None:
        self._client = client
        self.id: str = info.actor_id
        self.name: str = info.name
        self.max_task_retries = max_task_retries
        self._address: Optional[str] = info.address
        self._restarts = info.restarts

    def __repr__(self) -> str:
        return f"AsyncActor(id={self.id!r}, name={self.name!r})"

    @property
    def address(self) -> Optional[str]:
        return self._address

    async def _resolve(self, stale: Optional[str], deadline: float) -> str:
        while True:
            info = await await_actor(self._client, self.id)
            if stale is None or info.address != stale or info.restarts > self._restarts:
                self._address, self._restarts = info.address, info.restarts
                return info.address
            if time.monotonic() >= deadline:
                raise Timeout(f"actor {self.id} is unreachable at {stale} and the head has not restarted it")
            await asyncio.sleep(0.1)

    async def call(self, method: str, *args: Any) -> bytes:
        """Call `method` with `args`; returns its result bytes (ActorMethodError on an
        application error)."""
        _wire.check_name("method name", method)
        req = worker_pb2.CallActorRequest(actor_id=self.id, method=method, args=[_wire.value_bytes(a) for a in args])
        c = self._client
        deadline = time.monotonic() + c.actor_start_timeout
        retries_left = self.max_task_retries
        stale: Optional[str] = None
        not_found_seen = False
        while True:
            address = self._address or await self._resolve(stale, deadline)
            undelivered = False
            try:
                c._breakers.check(address)
                try:
                    reply = await c._workers.worker(address, "actors").CallActor(req, metadata=c._md)
                except grpc.RpcError as e:
                    if e.code() in _wire.NODE_FAILED:
                        c._breakers.failure(address)
                    undelivered = _wire.never_reached(e)
                    raise from_rpc(e, f"actor {self.id} at {address}") from None
                c._breakers.success(address)
            except XnaiError as err:
                if err.code is None:  # the breaker refused it: it never left
                    undelivered = True
                if err.code == grpc.StatusCode.NOT_FOUND and not not_found_seen:
                    not_found_seen, self._address, stale = True, None, None
                    continue
                if err.code is None or _wire.retriable(err.code):
                    self._address = None
                    if not undelivered:
                        if retries_left == 0:
                            raise
                        retries_left = max(retries_left - 1, -1)
                    if time.monotonic() >= deadline:
                        raise
                    stale = address
                    continue
                if err.code == grpc.StatusCode.NOT_FOUND:
                    self._address = None
                raise
            which = reply.WhichOneof("result")
            if which == "value":
                return reply.value
            if which == "error":
                raise ActorMethodError(reply.error)
            raise XnaiError("CallActor reply has no result")

    async def kill(self) -> None:
        await self._client.kill_actor(self.id)


async def await_actor(client: "AsyncClient", name_or_id: str) -> head_pb2.ActorInfo:
    deadline = time.monotonic() + client.actor_start_timeout
    while True:
        left = max(0.0, deadline - time.monotonic())
        req = head_pb2.GetActorRequest(name_or_id=name_or_id, timeout_ms=_wire.wait_ms(left))
        info = await client._head("GetActor", req)
        if info.state == ALIVE and info.address:
            return info
        if info.state == DEAD:
            raise ActorDead(f"actor {name_or_id} is dead: {info.error or 'killed'}")
        if time.monotonic() >= deadline:
            raise Timeout(f"actor {name_or_id} is still {common_pb2.ActorState.Name(info.state)} after {client.actor_start_timeout:.0f} s")
        if left == 0:
            await asyncio.sleep(0.05)


async def actor(
    self: "AsyncClient",
    cls: str,
    *args: Any,
    name: Optional[str] = None,
    max_restarts: int = 0,
    max_task_retries: int = 0,
    max_concurrency: int = 0,
    detached: bool = False,
    cpus: Optional[float] = None,
    memory_bytes: Optional[int] = None,
    labels: Optional[Dict[str, str]] = None,
) -> AsyncActor:
    """Create an actor of class `cls` and wait until it is alive."""
    _wire.check_name("actor class", cls)
    if name is not None:
        _wire.check_name("actor name", name)
    opts = head_pb2.ActorOptions(
        name=name or "",
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        max_concurrency=max_concurrency,
        detached=detached,
    )
    res = _wire.resources(cpus, memory_bytes, labels)
    if res is not None:
        opts.resources.CopyFrom(res)
    req = head_pb2.CreateActorRequest(request_id=_wire.request_id(), args=_wire.to_args(args), options=opts)
    setattr(req, "class", cls)
    reply = await self._head("CreateActor", req)
    return AsyncActor(self, await await_actor(self, reply.actor_id), max_task_retries)


async def get_actor(self: "AsyncClient", name_or_id: str) -> AsyncActor:
    return AsyncActor(self, await await_actor(self, name_or_id), 0)


async def kill_actor(self: "AsyncClient", name_or_id: str) -> str:
    req = head_pb2.KillActorRequest(request_id=_wire.request_id(), name_or_id=name_or_id)
    self._handles.pop(name_or_id, None)
    return (await self._head("KillActor", req)).actor_id


async def list_actors(self: "AsyncClient") -> List[head_pb2.ActorInfo]:
    return list((await self._head("ListActors", head_pb2.ListActorsRequest())).actors)


async def _handle(client: "AsyncClient", a: Union[str, AsyncActor]) -> AsyncActor:
    if isinstance(a, AsyncActor):
        return a
    h = client._handles.get(a)
    if h is None:
        h = client._handles[a] = await get_actor(client, a)
    return h


async def inference_actor(
    self: "AsyncClient",
    model: str,
    *,
    name: Optional[str] = None,
    ctx: int = 2048,
    threads: int = 2,
    batch: int = 512,
    slots: int = 1,
    queue: int = 16,
    embeddings: bool = True,
    memory_bytes: Optional[int] = None,
    **options: Any,
) -> AsyncActor:
    """See `xnai.Client.inference_actor`."""
    words = [f"model={model}", f"ctx={ctx}", f"threads={threads}", f"batch={batch}",
             f"slots={slots}", f"queue={queue}", f"embeddings={'true' if embeddings else 'false'}"]
    return await actor(self, "inference", *words, name=name, memory_bytes=memory_bytes, **options)


async def retrieval_actor(
    self: "AsyncClient", name: str, *, embedder: str, params: Sequence[str] = (), **options: Any
) -> AsyncActor:
    return await actor(self, "retrieval", f"embedder={embedder}", *params, name=name, **options)


class AsyncGeneration:
    """A streaming generation: `async for piece in gen`; then `stats` and `text`."""

    def __init__(self, call: Any, where: str) -> None:
        self._call = call
        self._where = where
        self.stats: Optional[GenerateStats] = None
        self.text = ""

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for chunk in self._call:
                kind = chunk.WhichOneof("kind")
                if kind == "text":
                    self.text += chunk.text
                    yield chunk.text
                elif kind == "stats":
                    self.stats = _rag.stats(chunk.stats)
                elif kind == "error":
                    raise ActorMethodError(chunk.error)
                else:
                    raise XnaiError("generate stream sent a chunk that is not text or stats")
        except grpc.RpcError as e:
            raise from_rpc(e, self._where) from None
        if self.stats is None:
            raise XnaiError("generate stream ended without stats")

    def cancel(self) -> None:
        self._call.cancel()


async def generate(
    self: "AsyncClient",
    actor: Union[str, AsyncActor],
    prompt: str,
    *,
    max_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    stop: Optional[Sequence[str]] = None,
) -> AsyncGeneration:
    """`gen = await c.generate("llm", prompt)`, then `async for piece in gen`."""
    a = await _handle(self, actor)
    body = _rag.generate_body(prompt, max_tokens, temperature, top_p, top_k, seed, stop)
    info = await await_actor(self, a.id)
    req = worker_pb2.CallActorRequest(actor_id=a.id, method="generate", args=[body])
    call = self._workers.worker(info.address, "actors").CallActorStream(req, metadata=self._md)
    return AsyncGeneration(call, f"actor {a.id} at {info.address}")


async def embed(self: "AsyncClient", actor: Union[str, AsyncActor], texts: Sequence[str]) -> List[List[float]]:
    if isinstance(texts, str):
        raise InvalidArgument("embed takes a list of texts")
    raw = await (await _handle(self, actor)).call("embed", json.dumps(list(texts)))
    return [list(map(float, v)) for v in json.loads(raw)]


async def add_documents(self: "AsyncClient", actor: Union[str, AsyncActor], docs: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    body = [{"id": d["id"], "text": d["text"], "metadata": dict(d.get("metadata") or {})} for d in docs]
    return json.loads(await (await _handle(self, actor)).call("add", json.dumps(body)))


async def search(self: "AsyncClient", actor: Union[str, AsyncActor], query: str, k: int = 5, mode: str = "hybrid") -> List[Hit]:
    body = _rag.search_body(query, k, mode)
    return _rag.hits(await (await _handle(self, actor)).call("search", body))


async def ask(
    self: "AsyncClient",
    question: str,
    *,
    retrieval: Union[str, AsyncActor],
    generator: Union[str, AsyncActor],
    k: int = 3,
    max_tokens: int = 48,
) -> Answer:
    """See `xnai.Client.ask`."""
    passages = await search(self, retrieval, question, k, "hybrid")
    prompt = _rag.rag_prompt(question, passages)
    g = await generate(self, generator, prompt, max_tokens=max_tokens, stop=["\n"])
    async for _ in g:
        pass
    answer = g.text.strip()
    return Answer(answer=answer, passages=passages, cited=_rag.cited(answer, question, passages), prompt=prompt)
