"""`xnai.aio`: the asyncio API (for FastAPI and other asyncio services).

    c = await xnai.aio.connect("h1:7000", token="...")
    ref = await c.submit("fill", 1000, 7)
    data = await c.get(ref, timeout=10)
    async for piece in await c.generate("llm", "Hello"): ...
"""

from .actors import AsyncActor, AsyncGeneration
from .client import AsyncClient, connect

__all__ = ["AsyncActor", "AsyncClient", "AsyncGeneration", "connect"]
