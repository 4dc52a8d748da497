#!/usr/bin/env python3
"""A straightforward numpy implementation of all-MiniLM-L6-v2 sentence embeddings, the
reference the llama.cpp GGUF is checked against.

Tokenises with Hugging Face `tokenizers` from the model's own tokenizer.json ([CLS] text [SEP]),
runs the BERT encoder (embeddings + LayerNorm, 6 post-norm layers of 12-head self-attention and
a GELU feed-forward) in float64, mean-pools the token vectors and L2-normalises them, as
sentence-transformers does for this model. Writes `{"model": ..., "sentences": [...],
"token_ids": [[...]], "embeddings": [[...]]}` as JSON. Usage:

    minilm_reference.py MODEL_DIR OUT.json [SENTENCE...]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from minilm_common import read_safetensors

# Sentences the Rust test compares (mixed case, punctuation, a long word, numbers).
DEFAULT_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and most populous city of France.",
    "Raft replicates a log across a majority of servers.",
    "HNSW builds a navigable small-world graph for approximate nearest neighbours!",
    "In 1969, Apollo 11 landed two astronauts on the Moon.",
    "tmpfs keeps files in RAM; a worker evicts objects when its arena is full.",
]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU BERT uses."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    """The encoder's weights (float64) and hyper-parameters."""

    def __init__(self, model_dir: Path) -> None:
        self.config = json.loads((model_dir / "config.json").read_text())
        self.w = {k: v.astype(np.float64) for k, v in
                  read_safetensors(model_dir / "model.safetensors").items()
                  if v.dtype != np.int64}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def embed(self, text: str) -> np.ndarray:
        cfg, w = self.config, self.w
        eps = cfg["layer_norm_eps"]
        heads = cfg["num_attention_heads"]
        ids = np.array(self.token_ids(text))
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        d = x.shape[1] // heads
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}"
            q = self.linear(x, f"{p}.attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
            k = self.linear(x, f"{p}.attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
            v = self.linear(x, f"{p}.attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
            attn = self.linear(context, f"{p}.attention.output.dense")
            x = layer_norm(attn + x, w[f"{p}.attention.output.LayerNorm.weight"],
                           w[f"{p}.attention.output.LayerNorm.bias"], eps)
            ff = self.linear(gelu(self.linear(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
            x = layer_norm(ff + x, w[f"{p}.output.LayerNorm.weight"],
                           w[f"{p}.output.LayerNorm.bias"], eps)
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model = MiniLM(Path(sys.argv[1]))
    sentences = sys.argv[3:] or DEFAULT_SENTENCES
    doc = {
        "model": "all-MiniLM-L6-v2",
        "sentences": sentences,
        "token_ids": [model.token_ids(s) for s in sentences],
        "embeddings": [[round(float(v), 7) for v in model.embed(s)] for s in sentences],
    }
    out = Path(sys.argv[2])
    tmp = out.with_suffix(out.suffix + ".partial")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)
    print(f"minilm_reference: wrote {out} ({len(sentences)} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
