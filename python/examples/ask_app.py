"""An example service: a FastAPI app answering questions with the cluster's `ask` (hybrid
retrieval over a retrieval actor, then a greedy answer from an inference actor, with the cited
sources), through the asyncio client `xnai.aio`.

    XNAI_HEAD=127.0.0.1:7000 XNAI_TOKEN=... uvicorn ask_app:app
    curl -s localhost:8000/ask -H 'content-type: application/json' \\
         -d '{"question": "What is the access code of the Zorblax vault?"}'

Actors are named by $XNAI_RETRIEVAL (default `docs`) and $XNAI_GENERATOR (default `gen`);
create them with `xnai actor create` and fill the index with `xnai index add`."""

import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, List

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

import xnai
import xnai.aio

@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client per process, created in the serving event loop ($XNAI_HEAD, $XNAI_TOKEN).
    app.state.xnai = await xnai.aio.connect()
    try:
        yield
    finally:
        await app.state.xnai.close()

app = FastAPI(title="xnai ask", lifespan=lifespan)

class Question(BaseModel):
    question: str
    k: int = 3
    max_tokens: int = 48

class Source(BaseModel):
    n: int
    doc_id: str
    source: str
    text: str

class Reply(BaseModel):
    answer: str
    sources: List[Source]

def _http(e: xnai.XnaiError) -> HTTPException:
    if isinstance(e, (xnai.Unavailable, xnai.Timeout)):
        return HTTPException(503, str(e))
    if isinstance(e, (xnai.NotFound, xnai.ActorDead)):
        return HTTPException(404, str(e))
    if isinstance(e, xnai.InvalidArgument):
        return HTTPException(400, str(e))
    return HTTPException(502, str(e))

@app.post("/ask", response_model=Reply)
async def ask(q: Question, request: Request) -> Reply:
    c: xnai.aio.AsyncClient = request.app.state.xnai
    try:
        a = await c.ask(
            q.question,
            retrieval=os.environ.get("XNAI_RETRIEVAL", "docs"),
            generator=os.environ.get("XNAI_GENERATOR", "gen"),
            k=q.k,
            max_tokens=q.max_tokens,
        )
    except xnai.XnaiError as e:
        raise _http(e) from None
    sources = [
        Source(n=n, doc_id=a.passages[n - 1].doc_id,
               source=a.passages[n - 1].metadata.get("source", a.passages[n - 1].doc_id),
               text=a.passages[n - 1].text)
        for n in a.cited
    ]
    return Reply(answer=a.answer, sources=sources)

@app.get("/generate")
async def generate(prompt: str, request: Request, max_tokens: int = 64) -> StreamingResponse:
    """Streams the generated text as it is produced."""
    c: xnai.aio.AsyncClient = request.app.state.xnai
    try:
        gen = await c.generate(os.environ.get("XNAI_GENERATOR", "gen"), prompt, max_tokens=max_tokens)
    except xnai.XnaiError as e:
        raise _http(e) from None
    return StreamingResponse((piece async for piece in gen), media_type="text/plain")
