#!/usr/bin/env bash
# Build the xnai container image without any registry: build the binaries on the host (cargo
# profile from XNAI_PROFILE, release by default; or take them from XNAI_BIN_DIR), assemble a
# root filesystem holding exactly them, every shared library `ldd` lists and the dynamic loader,
# plus /etc/passwd and /etc/group with the non-root user xnai (10001), and build it FROM scratch.
# It writes a CycloneDX SBOM (deploy/sbom.py) into the image and beside it, and signs the image's
# id and the SBOM's digest with an ssh key (sign_image in lib.sh; docs/PROVENANCE.md).
# Users who can pull base images may use deploy/Containerfile instead (see README).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BINS=(xnai xnai-head xnai-worker)

if [[ -n "${XNAI_BIN_DIR:-}" ]]; then
    BIN_DIR="$XNAI_BIN_DIR"
    say "using prebuilt binaries from $BIN_DIR"
else
    command -v cargo >/dev/null || die "cargo not found: install Rust or set XNAI_BIN_DIR"
    TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_DIR/target}"
    PROFILE_FLAG=()
    [[ "$XNAI_PROFILE" == release ]] && PROFILE_FLAG=(--release)
    say "cargo build ${PROFILE_FLAG[*]} (xnai-head, xnai-worker, xnai-cli) into $TARGET_DIR"
    (cd "$REPO_DIR" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build "${PROFILE_FLAG[@]}" \
        -p xnai-head -p xnai-worker -p xnai-cli --bins) || die "cargo build failed"
    BIN_DIR="$TARGET_DIR/$XNAI_PROFILE"
fi
for b in "${BINS[@]}"; do
    [[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b is missing: build it or set XNAI_BIN_DIR"
done

CTX="$XNAI_STATE_DIR/image"
ROOT="$CTX/rootfs"
rm -rf "$CTX"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/arena" "$ROOT/models" "$CTX/data"
chmod 1777 "$ROOT/tmp"

say "assembling the root filesystem in $ROOT"
for b in "${BINS[@]}"; do
    # Debug symbols make debug binaries ~100 MB each; the image does not need them.
    if command -v objcopy >/dev/null; then
        objcopy --strip-debug "$BIN_DIR/$b" "$ROOT/usr/local/bin/$b"
    else
        cp "$BIN_DIR/$b" "$ROOT/usr/local/bin/$b"
    fi
done

# Every shared library ldd lists (resolved through symlinks) at the path ldd gives, so the
# loader finds it; this picks up libgomp, libstdc++ etc. once the worker links llama.cpp.
LIBS=()
for b in "${BINS[@]}"; do
    out="$(ldd "$BIN_DIR/$b" 2>&1)" || {
        [[ "$out" == *"not a dynamic executable"* ]] && continue
        die "ldd $BIN_DIR/$b failed: $out"
    }
    if grep -q "not found" <<<"$out"; then
        die "$b needs a library that is not installed: $(grep 'not found' <<<"$out" | head -1 | xargs)"
    fi
    while read -r lib; do
        LIBS+=("$lib")
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<<"$out")
done
for lib in $(printf '%s\n' "${LIBS[@]}" | sort -u); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done

cat >"$ROOT/etc/passwd" <<'PASSWD'
root:x:0:0:root:/:/sbin/nologin
xnai:x:10001:10001:xnai:/data:/sbin/nologin
PASSWD
cat >"$ROOT/etc/group" <<'GROUP'
root:x:0:
xnai:x:10001:
GROUP
echo "hosts: files dns" >"$ROOT/etc/nsswitch.conf"
cp "$DEPLOY_DIR/Containerfile.scratch" "$CTX/Containerfile"

"$BIN_DIR/xnai-head" --help 2>/dev/null | grep -q -- "--peers" ||
    die "$BIN_DIR/xnai-head has no --peers (Raft): rebuild from a current checkout"

# The SBOM goes into the image (/usr/share/xnai/sbom.cdx.json) and beside its signature.
mkdir -p "$ROOT/usr/share/xnai"
SBOM_ARGS=()
for b in "${BINS[@]}"; do SBOM_ARGS+=(--bin "$b"); done
for lib in $(printf '%s\n' "${LIBS[@]}" | sort -u); do SBOM_ARGS+=(--lib "$lib"); done
command -v python3 >/dev/null || die "python3 is needed to write the image SBOM"
python3 "$DEPLOY_DIR/sbom.py" --repo "$REPO_DIR" --rootfs "$ROOT" --image "$XNAI_IMAGE" \
    "${SBOM_ARGS[@]}" --out "$ROOT/usr/share/xnai/sbom.cdx.json" || die "writing the SBOM failed"

say "$XNAI_ENGINE build -t $XNAI_IMAGE ($(du -sh "$ROOT" | cut -f1) root filesystem, ${#LIBS[@]} library paths)"
"$XNAI_ENGINE" build -q -f "$CTX/Containerfile" -t "$XNAI_IMAGE" "$CTX" >/dev/null ||
    die "$XNAI_ENGINE build failed"
say "built $XNAI_IMAGE"
sign_image "$XNAI_IMAGE" "$ROOT/usr/share/xnai/sbom.cdx.json"
