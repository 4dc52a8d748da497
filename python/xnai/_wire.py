"""Wire facts every call path shares, defined once (they mirror `xnai_proto`: `limits.rs`,
`net/leader.rs`, `net/codes.rs`, `auth.rs`): message and chunk sizes, the leader-hint
metadata key, which codes are retriable, the auth header, request ids, and how Python values
become task arguments. Pure functions: no I/O here."""

from __future__ import annotations

import os
import uuid
from typing import Any, List, Optional, Sequence, Tuple, Union

import grpc

from .v1 import common_pb2, head_pb2

#: Largest gRPC message any xnai node sends or accepts (8 MiB).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Objects are streamed in chunks of this size (1 MiB).
CHUNK_BYTES = 1024 * 1024
#: Largest total of inline task/actor arguments (1 MiB); bigger data goes in an object.
MAX_INLINE_ARGS_BYTES = 1024 * 1024
#: Longest function, class, method or actor name.
MAX_NAME_BYTES = 256
#: Response metadata key of a non-leader head's UNAVAILABLE answer naming the leader.
LEADER_METADATA = "xnai-leader"
#: Metadata key carrying the token, as `Bearer <token>`.
AUTH_HEADER = "authorization"
#: How long a head call keeps looking for the leader before giving up (as the Rust SDK).
FOLLOW_DEADLINE_S = 15.0
#: Pause between rounds over the heads: 20 ms doubling to 200 ms.
FOLLOW_BACKOFF_S = (0.02, 0.2)
#: Longest single wait the head accepts (longer waits are several calls).
MAX_HEAD_WAIT_S = 600.0
#: Default session lease.
DEFAULT_SESSION_LEASE_S = 10.0
#: Smallest object moved through shared memory.
LOCAL_MIN_BYTES = CHUNK_BYTES

RETRIABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED}
)
NODE_FAILED = RETRIABLE | {grpc.StatusCode.DEADLINE_EXCEEDED}

#: Channel options: the wire's message limit both ways, HTTP/2 keepalive like the servers.
CHANNEL_OPTIONS: List[Tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    # 1 MiB HTTP/2 frames: a 1 MiB object chunk arrives in one frame, not 64 (as the Rust SDK).
    ("grpc.http2.max_frame_size", 1 << 20),
]

Value = Union[bytes, bytearray, memoryview, str, int, float, bool]


def request_id() -> str:
    """A fresh request id: one per logical write, reused when that write is retried."""
    return uuid.uuid4().hex


def retriable(code: Optional[grpc.StatusCode]) -> bool:
    """Whether a call that failed with `code` may be sent again (carrying its request id)."""
    return code in RETRIABLE


def leader_hint(e: grpc.RpcError) -> Optional[str]:
    """The leader address a non-leader head named in its answer, if any."""
    md = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
    for key, value in md or ():
        if key == LEADER_METADATA:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def never_reached(e: grpc.RpcError) -> bool:
    """Best effort: the call certainly never reached the server (no connection was made), so
    resending it cannot run it twice. grpcio exposes no error chain, so this reads its
    connection-failure wording."""
    if e.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    text = (e.details() or "").lower()
    return any(
        w in text
        for w in ("failed to connect", "connection refused", "connect failed", "dns resolution")
    )


def auth_metadata(token: str) -> Tuple[Tuple[str, str], ...]:
    """The call metadata carrying `token`."""
    if not token.isascii() or not token.isprintable():
        raise ValueError("the cluster token must be printable ASCII")
    return ((AUTH_HEADER, f"Bearer {token}"),)


def heads_from(heads: Union[str, Sequence[str], None]) -> List[str]:
    """Head addresses from `"h1:7000,h2:7000"`, a list, or $XNAI_HEAD."""
    if heads is None:
        heads = os.environ.get("XNAI_HEAD", "")
    if isinstance(heads, str):
        heads = heads.split(",")
    out = [h.strip() for h in heads if h and h.strip()]
    if not out:
        raise ValueError("no head address: pass connect(\"host:port,...\") or set XNAI_HEAD")
    return out


def token_from(token: Optional[str]) -> str:
    """The cluster token given, else $XNAI_TOKEN."""
    t = token if token is not None else os.environ.get("XNAI_TOKEN", "")
    if not t:
        raise ValueError("no cluster token: pass token=... or set XNAI_TOKEN")
    return t.strip()


def value_bytes(v: Value) -> bytes:
    """A Python value as an inline argument: bytes as they are, str as UTF-8, numbers and
    booleans as their decimal text (what the workers' built-ins parse)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool):
        return b"true" if v else b"false"
    if isinstance(v, (int, float)):
        return str(v).encode()
    raise TypeError(f"cannot pass {type(v).__name__} as an argument: use bytes, str, a number or an ObjectRef")


def check_name(what: str, name: str) -> None:
    if not name or len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"{what} must be 1 to {MAX_NAME_BYTES} bytes, got {len(name.encode())}")


def to_args(args: Sequence[Any]) -> List[common_pb2.Arg]:
    """Task/actor constructor arguments: ObjectRefs by reference, other values inline; the
    inline total is checked against the wire limit before anything is sent."""
    from .refs import ObjectRef

    out: List[common_pb2.Arg] = []
    inline = 0
    for a in args:
        if isinstance(a, ObjectRef):
            out.append(common_pb2.Arg(object_id=a.hex))
        else:
            b = value_bytes(a)
            inline += len(b)
            out.append(common_pb2.Arg(value=b))
    if inline > MAX_INLINE_ARGS_BYTES:
        raise ValueError(
            f"inline arguments total {inline} bytes, over the {MAX_INLINE_ARGS_BYTES}-byte limit: "
            "put the data as an object and pass it by reference"
        )
    return out


def resources(cpus: Optional[float], memory_bytes: Optional[int], labels: Optional[dict]) -> Optional[common_pb2.Resources]:
    """A Resources message, or None when nothing was asked (the head's defaults apply)."""
    if cpus is None and memory_bytes is None and not labels:
        return None
    return common_pb2.Resources(
        cpus=float(cpus or 0.0), memory_bytes=int(memory_bytes or 0), labels=dict(labels or {})
    )


def task_options(max_retries: Optional[int], retry_exceptions: bool, res: Optional[common_pb2.Resources]) -> head_pb2.TaskOptions:
    opts = head_pb2.TaskOptions(retry_exceptions=retry_exceptions)
    if max_retries is not None:
        opts.max_retries = max_retries
    if res is not None:
        opts.resources.CopyFrom(res)
    return opts


def wait_ms(seconds: Optional[float]) -> int:
    """Milliseconds of a head wait, capped at what the head accepts (None: the cap)."""
    if seconds is None:
        seconds = MAX_HEAD_WAIT_S
    return int(max(0.0, min(seconds, MAX_HEAD_WAIT_S)) * 1000)
