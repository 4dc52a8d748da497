"""The client's exception hierarchy. Every failure a caller sees is an `XnaiError`; gRPC
statuses are mapped here, in one place, so `grpc.RpcError` never escapes the package. The
outcomes programs must tell apart (task failed, object lost, timed out, actor method error,
node unavailable) have their own classes, and every class keeps the gRPC code it came from."""

from __future__ import annotations

from typing import Optional

import grpc


class XnaiError(Exception):
    """Base class of every error this package raises. `code` is the gRPC status code behind
    it, when a node sent one."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Unavailable(XnaiError):
    """No head or worker could serve the call (unreachable, no leader within the follow
    deadline, breaker open). Retrying later may succeed."""


class Timeout(XnaiError, TimeoutError):
    """A wait ended before the object or actor was ready (also a `TimeoutError`)."""


class TaskFailed(XnaiError):
    """The task producing the object failed for good; `cause` is the task's error text."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"task failed: {cause}")
        self.cause = cause


class ObjectLost(XnaiError):
    """Every copy of the object is gone and it cannot be rebuilt (or it was freed)."""


class ActorMethodError(XnaiError):
    """An actor method (or generation) returned an application error; `cause` is its text."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"actor method failed: {cause}")
        self.cause = cause


class ActorDead(XnaiError):
    """The actor was killed or failed for good."""


class Corrupt(XnaiError):
    """Bytes received for an object do not match its size or CRC-32."""


class InvalidArgument(XnaiError, ValueError):
    """The request was refused as malformed (also a `ValueError`)."""


class NotFound(XnaiError, LookupError):
    """No such actor, function, object or session (also a `LookupError`)."""


class Unauthenticated(XnaiError):
    """The cluster token is missing or wrong."""


class ResourceExhausted(XnaiError):
    """The cluster cannot take it now (arena full, inline-argument budget, busy slots)."""


_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNKNOWN: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def from_rpc(e: grpc.RpcError, where: str = "") -> XnaiError:
    """The `XnaiError` for a failed gRPC call (code and message kept)."""
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else None
    message = details or (code.name if code else str(e))
    if where:
        message = f"{where}: {message}"
    cls = _BY_CODE.get(code, XnaiError) if code is not None else XnaiError
    return cls(message, code)
