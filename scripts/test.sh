#!/usr/bin/env bash
# The whole test suite, the one gate before every commit and what CI runs (.ci/run):
# formatting, clippy with warnings as errors, then every unit and multi-process test against
# freshly built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# Some sandboxes hand out /dev/null as a regular file. Everything redirected "to /dev/null"
# then piles up in it, and cargo's `rustc -` target probe (whose stdin is /dev/null) reads that
# junk as Rust source and fails. Put the real device back when we may; otherwise empty the file
# before every cargo step so each probe reads nothing.
null_guard() {
  [ -c /dev/null ] && return 0
  if [ -z "${NULL_GUARD_TRIED:-}" ]; then
    NULL_GUARD_TRIED=1
    echo "test: /dev/null is not a character device; recreating it"
    if rm -f /dev/null && mknod -m 0666 /dev/null c 1 3; then return 0; fi
    echo "test: could not recreate /dev/null; emptying it before each step instead"
  fi
  : >/dev/null || true
}
null_guard
scripts/setup.sh
null_guard

echo "== cargo fmt --check"
null_guard
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
null_guard
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build --bins (the multi-process tests start these)"
null_guard
cargo build --workspace --bins
echo "== cargo nextest run"
null_guard
cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
echo "== python client: pytest against live local clusters (python/, docs in README)"
null_guard
XNAI_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" python/run-tests.sh -q
echo "== chaos: a seeded mix of faults against a local cluster (docs/CHAOS.md)"
null_guard
target_dir="${CARGO_TARGET_DIR:-target}"
"$target_dir/debug/xnai-chaos" run --target local --nemesis mix --seed "${XNAI_CHAOS_SEED:-42}" \
  --duration 90s --strict --report "$target_dir/chaos/report.json"
