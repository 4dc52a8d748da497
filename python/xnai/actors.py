"""Actors for the synchronous client: `Client.actor(...)` creates one and waits until it is
alive, `Actor.call` goes straight to the hosting worker (one round trip over a cached channel,
through that worker's breaker). As in the Rust SDK, a call that certainly never reached a dead
worker waits for the head to restart the actor elsewhere and is sent again; one that may have
run is retried only within `max_task_retries`. Also the inference and retrieval helpers:
streaming `generate`, `embed`, `search`, `ask`. These functions are `Client` methods."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Union

import grpc

from . import _rag, _wire
from .errors import ActorDead, ActorMethodError, InvalidArgument, NotFound, Timeout, XnaiError, from_rpc
from .refs import Answer, GenerateStats, Hit
from .v1 import common_pb2, head_pb2, worker_pb2

if TYPE_CHECKING:
    from .client import Client

ALIVE = common_pb2.ACTOR_STATE_ALIVE
DEAD = common_pb2.ACTOR_STATE_DEAD


class Actor:
    """A live actor. Calls from one thread run in order. Thread-safe."""

    def __init__(self, client: "Client", info: head_pb2.ActorInfo, max_task_retries: int) -> None:
        self._client = client
        self.id: str = info.actor_id
        self.name: str = info.name
        self.max_task_retries = max_task_retries
        self._address: Optional[str] = info.address
        self._restarts = info.restarts

    def __repr__(self) -> str:
        return f"Actor(id={self.id!r}, name={self.name!r})"

    @property
    def address(self) -> Optional[str]:
        """The hosting worker's address as last seen."""
        return self._address

    def _resolve(self, stale: Optional[str], deadline: float) -> str:
        while True:
            info = await_actor(self._client, self.id)
            if stale is None or info.address != stale or info.restarts > self._restarts:
                self._address, self._restarts = info.address, info.restarts
                return info.address
            if time.monotonic() >= deadline:
                raise Timeout(f"actor {self.id} is unreachable at {stale} and the head has not restarted it")
            time.sleep(0.1)

    def call(self, method: str, *args: Any) -> bytes:
        """Call `method` with `args` (bytes, str or numbers) and return its result bytes. An
        application error raises ActorMethodError."""
        _wire.check_name("method name", method)
        req = worker_pb2.CallActorRequest(actor_id=self.id, method=method, args=[_wire.value_bytes(a) for a in args])
        c = self._client
        deadline = time.monotonic() + c.actor_start_timeout
        retries_left = self.max_task_retries
        stale: Optional[str] = None
        not_found_seen = False
        while True:
            address = self._address or self._resolve(stale, deadline)
            undelivered = False
            try:
                c._breakers.check(address)
                try:
                    reply = c._workers.worker(address, "actors").CallActor(req, metadata=c._md)
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

    def kill(self) -> None:
        """Kill the actor (its name becomes free)."""
        self._client.kill_actor(self.id)


def await_actor(client: "Client", name_or_id: str) -> head_pb2.ActorInfo:
    """Wait until the actor is alive; dead raises ActorDead, too slow Timeout."""
    deadline = time.monotonic() + client.actor_start_timeout
    while True:
        left = max(0.0, deadline - time.monotonic())
        info = client._head("GetActor", head_pb2.GetActorRequest(name_or_id=name_or_id, timeout_ms=_wire.wait_ms(left)))
        if info.state == ALIVE and info.address:
            return info
        if info.state == DEAD:
            raise ActorDead(f"actor {name_or_id} is dead: {info.error or 'killed'}")
        if time.monotonic() >= deadline:
            raise Timeout(f"actor {name_or_id} is still {common_pb2.ActorState.Name(info.state)} after {client.actor_start_timeout:.0f} s")
        if left == 0:
            time.sleep(0.05)


def actor(
    self: "Client",
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
) -> Actor:
    """Create an actor of class `cls` (in the workers' registry: `counter`, `inference`,
    `retrieval`, ...) with constructor `args`, and wait until it is alive."""
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
    reply = self._head("CreateActor", req)
    return Actor(self, await_actor(self, reply.actor_id), max_task_retries)


def get_actor(self: "Client", name_or_id: str) -> Actor:
    """A handle to the actor with this name (or id), waiting until it is alive."""
    return Actor(self, await_actor(self, name_or_id), 0)


def kill_actor(self: "Client", name_or_id: str) -> str:
    """Kill the actor with this name or id; returns its id."""
    req = head_pb2.KillActorRequest(request_id=_wire.request_id(), name_or_id=name_or_id)
    self._handles.pop(name_or_id, None)
    return self._head("KillActor", req).actor_id


def list_actors(self: "Client") -> List[head_pb2.ActorInfo]:
    """Every actor the head knows."""
    return list(self._head("ListActors", head_pb2.ListActorsRequest()).actors)


def _handle(client: "Client", a: Union[str, Actor]) -> Actor:
    """An Actor for a handle or a name (handles by name are cached)."""
    if isinstance(a, Actor):
        return a
    h = client._handles.get(a)
    if h is None:
        h = client._handles[a] = get_actor(client, a)
    return h


def inference_actor(
    self: "Client",
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
) -> Actor:
    """Create an `inference` actor serving the GGUF file `model` (a path on the workers).
    Unlike the Rust SDK this client does not size it from the GGUF header: pass
    `memory_bytes` to have the head place it only where that much memory is free."""
    words = [f"model={model}", f"ctx={ctx}", f"threads={threads}", f"batch={batch}",
             f"slots={slots}", f"queue={queue}", f"embeddings={'true' if embeddings else 'false'}"]
    return actor(self, "inference", *words, name=name, memory_bytes=memory_bytes, **options)


def retrieval_actor(self: "Client", name: str, *, embedder: str, params: Sequence[str] = (), **options: Any) -> Actor:
    """Create a `retrieval` actor `name` embedding through the inference actor `embedder`,
    with extra constructor words (`chunk=60`, ...)."""
    return actor(self, "retrieval", f"embedder={embedder}", *params, name=name, **options)


class Generation:
    """A streaming generation: iterate it for text pieces as the worker produces them; then
    `stats` holds the counts and timings and `text` the whole text. `cancel()` (or leaving
    the loop and dropping it) stops the generation at its next token."""

    def __init__(self, call: Any, where: str) -> None:
        self._call = call
        self._where = where
        self.stats: Optional[GenerateStats] = None
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._call:
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


def generate(
    self: "Client",
    actor: Union[str, Actor],
    prompt: str,
    *,
    max_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    stop: Optional[Sequence[str]] = None,
) -> Generation:
    """Start a generation on the inference actor (handle or name) and stream it:
    `for piece in c.generate("llm", prompt, max_tokens=32): ...`. Greedy by default."""
    a = _handle(self, actor)
    body = _rag.generate_body(prompt, max_tokens, temperature, top_p, top_k, seed, stop)
    info = await_actor(self, a.id)
    req = worker_pb2.CallActorRequest(actor_id=a.id, method="generate", args=[body])
    call = self._workers.worker(info.address, "actors").CallActorStream(req, metadata=self._md)
    return Generation(call, f"actor {a.id} at {info.address}")


def embed(self: "Client", actor: Union[str, Actor], texts: Sequence[str]) -> List[List[float]]:
    """L2-normalised embeddings of `texts` from an inference actor."""
    if isinstance(texts, str):
        raise InvalidArgument("embed takes a list of texts")
    raw = _handle(self, actor).call("embed", json.dumps(list(texts)))
    return [list(map(float, v)) for v in json.loads(raw)]


def add_documents(self: "Client", actor: Union[str, Actor], docs: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """Add documents `{"id", "text", "metadata"}` to a retrieval actor (it chunks and embeds
    them); returns `{"documents": n, "chunks": m}`."""
    body = [{"id": d["id"], "text": d["text"], "metadata": dict(d.get("metadata") or {})} for d in docs]
    return json.loads(_handle(self, actor).call("add", json.dumps(body)))


def search(self: "Client", actor: Union[str, Actor], query: str, k: int = 5, mode: str = "hybrid") -> List[Hit]:
    """The `k` best chunks for `query` from a retrieval actor (`vector`, `bm25` or `hybrid`)."""
    return _rag.hits(_handle(self, actor).call("search", _rag.search_body(query, k, mode)))


def ask(
    self: "Client",
    question: str,
    *,
    retrieval: Union[str, Actor],
    generator: Union[str, Actor],
    k: int = 3,
    max_tokens: int = 48,
) -> Answer:
    """Retrieve the `k` best passages (hybrid), have `generator` answer greedily in one line
    from the numbered passages, and return the answer with the passages it cites."""
    passages = search(self, retrieval, question, k, "hybrid")
    prompt = _rag.rag_prompt(question, passages)
    g = generate(self, generator, prompt, max_tokens=max_tokens, stop=["\n"])
    for _ in g:
        pass
    answer = g.text.strip()
    return Answer(answer=answer, passages=passages, cited=_rag.cited(answer, question, passages), prompt=prompt)


__all__ = ["Actor", "Generation", "NotFound"]
