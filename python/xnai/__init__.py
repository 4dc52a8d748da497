"""xnai: the Python client of the xnai cluster (tasks, objects, actors, inference, retrieval).

    import xnai
    c = xnai.connect("h1:7000,h2:7000", token="...")   # or $XNAI_HEAD / $XNAI_TOKEN
    ref = c.submit("fill", 1000, 7)
    data = c.get(ref, timeout=10)

`xnai.aio` has the same API for asyncio (FastAPI). Errors are `xnai.XnaiError` subclasses,
never raw `grpc.RpcError`."""

from .actors import Actor, Generation
from .client import Client, connect
from .errors import (
    ActorDead,
    ActorMethodError,
    Corrupt,
    InvalidArgument,
    NotFound,
    ObjectLost,
    ResourceExhausted,
    TaskFailed,
    Timeout,
    Unauthenticated,
    Unavailable,
    XnaiError,
)
from .refs import Answer, GenerateStats, Hit, ObjectRef, WaitResult

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorDead",
    "ActorMethodError",
    "Answer",
    "Client",
    "Corrupt",
    "GenerateStats",
    "Generation",
    "Hit",
    "InvalidArgument",
    "NotFound",
    "ObjectLost",
    "ObjectRef",
    "ResourceExhausted",
    "TaskFailed",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "WaitResult",
    "XnaiError",
    "connect",
]
