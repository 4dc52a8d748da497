"""The asyncio API (`xnai.aio`) under FastAPI's test client: the example app answers with
`ask` and streams a generation; a test app drives tasks, objects (both paths), actors, wait
and error mapping through the async client inside the app's event loop."""

import importlib.util
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

import xnai
import xnai.aio

from conftest import Cluster, splitmix64_bytes

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ask_app.py"


def test_example_app_asks_the_cluster(rag_cluster: Cluster, monkeypatch) -> None:
    monkeypatch.setenv("XNAI_HEAD", rag_cluster.head_env)
    monkeypatch.setenv("XNAI_TOKEN", rag_cluster.token)
    spec = importlib.util.spec_from_file_location("ask_app", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with TestClient(mod.app) as http:
        r = http.post("/ask", json={"question": "What is the access code of the Zorblax vault?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "7291" in body["answer"], body
        assert any(s["doc_id"] == "vault.txt" for s in body["sources"]), body
        r = http.get("/generate", params={"prompt": "Question: What is the capital of France?\nAnswer:", "max_tokens": 16})
        assert r.status_code == 200 and "Paris" in r.text, r.text
        monkeypatch.setenv("XNAI_GENERATOR", "nobody")
        assert http.post("/ask", json={"question": "x"}).status_code in (404, 503)


def make_app(cluster: Cluster) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.c = await xnai.aio.connect(cluster.head_env, cluster.token)
        app.state.streamed = await xnai.aio.connect(cluster.head_env, cluster.token, shared_memory=False)
        yield
        await app.state.c.close()
        await app.state.streamed.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/fill")
    async def fill(n: int, seed: int, request: Request):
        c = request.app.state.c
        ref = await c.submit("fill", n, seed)
        done, pending = await c.wait([ref], num_returns=1, timeout=30)
        assert done == [ref] and not pending
        digest = await c.submit("digest", ref)
        return {"digest": (await c.get(digest, timeout=30)).decode(), "size": len(await c.get(ref, timeout=30))}

    @app.post("/roundtrip")
    async def roundtrip(request: Request, size: int):
        data = os.urandom(size)
        out = {}
        for name in ("c", "streamed"):
            c = getattr(request.app.state, name)
            ref = await c.put(data)
            out[name] = await c.get(ref, timeout=60) == data
            path = f"/tmp/xnai-aio-{os.getpid()}-{name}"
            out[name] &= await c.get_to_file(ref, path, timeout=60) == size and open(path, "rb").read() == data
            os.unlink(path)
            await c.free([ref])
        return out

    @app.post("/count")
    async def count(request: Request, times: int):
        c = request.app.state.c
        a = await c.actor("counter")
        last = None
        for _ in range(times):
            last = await a.call("incr")
        await a.kill()
        return {"last": int(last)}

    @app.get("/fail")
    async def fail(request: Request):
        try:
            await request.app.state.c.get(await request.app.state.c.submit("fill", "x", 1), timeout=30)
        except xnai.TaskFailed as e:
            raise HTTPException(422, e.cause)
        return {}

    return app


def test_async_api_under_fastapi(cluster: Cluster) -> None:
    import hashlib

    with TestClient(make_app(cluster)) as http:
        r = http.get("/fill", params={"n": 5000, "seed": 3})
        assert r.json() == {"digest": hashlib.sha256(splitmix64_bytes(5000, 3)).hexdigest(), "size": 5000}
        assert http.post("/roundtrip", params={"size": 16 << 20}).json() == {"c": True, "streamed": True}
        assert http.post("/count", params={"times": 25}).json() == {"last": 25}
        r = http.get("/fail")
        assert r.status_code == 422 and r.json()["detail"], r.text
