"""The pure parts of `ask`, the same rules as the Rust SDK's `retrieval.rs`: the numbered-
passage Question/Answer prompt and which passages an answer cites; plus decoding of search
hits and generation stats. No I/O."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Sequence

from .refs import GenerateStats, Hit

MODES = ("vector", "bm25", "hybrid")


def rag_prompt(question: str, passages: Sequence[Hit]) -> str:
    """Numbered passages, then `Question: ...` / `Answer:` (the form a base model completes)."""
    p = (
        "Answer the question with a short answer taken from the passages below. "
        "Cite the passage number in brackets.\n\n"
    )
    for i, h in enumerate(passages):
        source = h.metadata.get("source", h.doc_id)
        p += f"[{i + 1}] ({source}) {h.text}\n\n"
    return p + f"Question: {question.strip()}\nAnswer:"


def _words(text: str) -> List[str]:
    return [w.lower() for w in re.split(r"[^\w]|_", text) if len(w) >= 3]


def cited(answer: str, question: str, passages: Sequence[Hit]) -> List[int]:
    """Passages (1-based) the answer cites: the `[n]` it names, else those containing a word of
    the answer (3+ letters or digits) the question does not contain, else none."""
    named: List[int] = []
    for rest in answer.split("[")[1:]:
        inner = rest.split("]")[0].strip()
        if inner.isdigit() and 1 <= int(inner) <= len(passages):
            if not named or named[-1] != int(inner):
                named.append(int(inner))
    if named:
        return named
    asked = set(_words(question))
    new = [w for w in _words(answer) if w not in asked]
    if not new:
        return []
    return [i + 1 for i, h in enumerate(passages) if any(w in set(_words(h.text)) for w in new)]


def search_body(query: str, k: int, mode: str) -> bytes:
    if mode not in MODES:
        raise ValueError(f"search mode must be one of {', '.join(MODES)}, got {mode!r}")
    if k < 1:
        raise ValueError("k must be at least 1")
    return json.dumps({"query": query, "k": k, "mode": mode}).encode()


def hits(raw: bytes) -> List[Hit]:
    return [
        Hit(
            doc_id=h["doc_id"],
            chunk=int(h["chunk"]),
            text=h["text"],
            score=float(h["score"]),
            metadata=dict(h.get("metadata") or {}),
        )
        for h in json.loads(raw)
    ]


def generate_body(
    prompt: str,
    max_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    seed: int,
    stop: Optional[Sequence[str]],
) -> bytes:
    """The JSON `generate` request an inference actor parses."""
    req: Dict[str, Any] = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "seed": seed,
        "stop": list(stop or []),
    }
    return json.dumps(req).encode()


def stats(s: Any) -> GenerateStats:
    """GenerateStats from the protobuf message."""
    return GenerateStats(
        prompt_tokens=s.prompt_tokens,
        generated_tokens=s.generated_tokens,
        queue_ms=s.queue_ms,
        prompt_ms=s.prompt_ms,
        generate_ms=s.generate_ms,
        time_to_first_token_ms=s.time_to_first_token_ms,
        finish_reason=s.finish_reason,
    )
