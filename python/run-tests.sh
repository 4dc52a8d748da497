#!/usr/bin/env bash
# The Python client's test suite: a fresh venv, `pip install ./python[test]` (the stubs are
# generated from proto/ while the package builds), then pytest against live local clusters
# started from the built binaries. Build them first:
#   cargo build -p xnai-head -p xnai-worker -p xnai-cli --bins
# Env: XNAI_BIN_DIR (default target/debug), PYTHON (default python3), XNAI_PY_VENV (where the
# venv goes, default target/py-venv). Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
venv="${XNAI_PY_VENV:-$repo/target/py-venv}"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$here[test]"
rm -rf "$here/build" "$here"/*.egg-info
# Absolute: pytest runs from python/, so a relative directory would point elsewhere.
XNAI_BIN_DIR="$(cd "${XNAI_BIN_DIR:-$repo/target/debug}" && pwd)"
export XNAI_BIN_DIR
cd "$here"
# The pytest script, not `python -m pytest`: that would put this folder on sys.path, and its
# xnai/ (no generated stubs) would shadow the installed package.
exec "$venv/bin/pytest" -p no:cacheprovider "$@"
