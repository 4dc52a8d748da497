#!/usr/bin/env bash
# The main job: build xnai, start a local cluster (1 head, 2 workers) on this machine, and run a
# small real workload against it with the `xnai` CLI. Stops the cluster at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== building release binaries"
cargo build --release --bins
XNAI=target/release/xnai
DIR=$(mktemp -d -t xnai-demo.XXXXXX)
trap '$XNAI down --data-dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT

echo "== xnai up --heads 1 --workers 2 --data-dir $DIR --detach"
$XNAI up --heads 1 --workers 2 --data-dir "$DIR" --arena-bytes 512MiB --detach
export XNAI_HEAD=$(paste -sd, "$DIR/heads")
export XNAI_TOKEN=$(cat "$DIR/token")

step() { printf '\n$ xnai %s\n' "$*"; $XNAI "$@"; }
step status
step run echo hello
ID=$($XNAI task submit fill 50000000 7)
echo; echo "\$ xnai task submit fill 50000000 7"; echo "$ID"
step run digest "@$ID"
printf '\n$ xnai object get %s | sha256sum\n' "$ID"
$XNAI object get "$ID" | sha256sum
step actor create counter --name demo-counter
step actor call demo-counter incr
step actor call demo-counter incr
step actor call demo-counter incr
head -c $((64 * 1024 * 1024)) /dev/urandom > "$DIR/payload.bin"
PUT=$($XNAI object put "$DIR/payload.bin")
printf '\n$ xnai object put payload.bin (64 MiB)\n%s\n' "$PUT"
$XNAI object get "$PUT" -o "$DIR/back.bin"
cmp "$DIR/payload.bin" "$DIR/back.bin" && echo "64 MiB object came back byte for byte"
step object info "$PUT"
step actor list
step status
echo; echo "demo done; stopping the cluster"
