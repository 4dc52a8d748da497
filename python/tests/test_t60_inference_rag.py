"""Inference and retrieval on the real models: Gemma 3 270M streams its generation piece by
piece, MiniLM embeds, the retrieval actor searches (hybrid, vector, bm25) and `ask` answers
from the indexed text with the cited source."""

import math
import time

import pytest

import xnai

from conftest import Cluster

QUESTION = "Question: What is the capital of France?\nAnswer:"


def test_streaming_generation(rag_cluster: Cluster) -> None:
    with xnai.connect(rag_cluster.head_env, rag_cluster.token) as c:
        start = time.monotonic()
        gen = c.generate("gen", "Once upon a time, in a small village,", max_tokens=48)
        arrivals = []
        for piece in gen:
            assert isinstance(piece, str)
            arrivals.append(time.monotonic() - start)
        assert gen.stats is not None and gen.stats.generated_tokens >= 8, gen.stats
        assert len(arrivals) >= 4
        # streamed: the pieces arrived over the generation, not all at once at the end
        assert arrivals[-1] - arrivals[0] >= 0.5 * gen.stats.generate_ms / 1000, (arrivals, gen.stats)
        g2 = c.generate("gen", QUESTION, max_tokens=16)
        assert "Paris" in "".join(g2), g2.text
        with pytest.raises(xnai.ActorMethodError, match="(?i)prompt"):
            list(c.generate("gen", "word " * 3000, max_tokens=4))  # over the 2048-token context


def test_embed(rag_cluster: Cluster) -> None:
    with xnai.connect(rag_cluster.head_env, rag_cluster.token) as c:
        vs = c.embed("emb", ["a cat sleeps", "a kitten naps", "tax law"])
        assert len(vs) == 3 and all(len(v) == 384 for v in vs)
        assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vs)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))
        assert dot(vs[0], vs[1]) > dot(vs[0], vs[2])


def test_search_and_ask(rag_cluster: Cluster) -> None:
    with xnai.connect(rag_cluster.head_env, rag_cluster.token) as c:
        for mode in ("hybrid", "vector", "bm25"):
            hits = c.search("docs", "how do I bake sourdough bread", k=2, mode=mode)
            assert hits and hits[0].doc_id == "bread.txt", (mode, hits)
        with pytest.raises(ValueError):
            c.search("docs", "x", mode="fuzzy")
        a = c.ask("What is the access code of the Zorblax vault?", retrieval="docs", generator="gen")
        assert "7291" in a.answer, a
        assert any(a.passages[n - 1].doc_id == "vault.txt" for n in a.cited), a
        assert a.prompt.endswith("Answer:")
