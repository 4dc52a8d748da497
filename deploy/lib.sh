# Shared settings for deploy/*.sh (sourced, not run). Every knob is an environment variable:
#   XNAI_PROFILE     release (default) or debug: which cargo profile build-image.sh builds
#   XNAI_BIN_DIR     take xnai, xnai-head, xnai-worker from here and build nothing
#   XNAI_IMAGE       image tag (default xnai:local)
#   XNAI_PROJECT     compose project name (default xnai)
#   XNAI_STATE_DIR   generated token, env file and image context (default deploy/.state)
#   XNAI_ENGINE      docker (default) or podman
#   XNAI_COMPOSE     the compose command (default: docker compose, else docker-compose;
#                    podman-compose when XNAI_ENGINE=podman)
#   XNAI_PORT_BASE   heads listen on BASE+1..3, workers on BASE+101..103 (default 17000)
#   XNAI_WORKER_CPUS CPUs each worker offers (up.sh default: host cores / 3, at least 1)
#   XNAI_WORKER_MEMORY memory each worker offers (compose default 448MiB)

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
XNAI_PROFILE="${XNAI_PROFILE:-release}"
XNAI_IMAGE="${XNAI_IMAGE:-xnai:local}"
XNAI_PROJECT="${XNAI_PROJECT:-xnai}"
XNAI_STATE_DIR="${XNAI_STATE_DIR:-$DEPLOY_DIR/.state}"
XNAI_ENGINE="${XNAI_ENGINE:-docker}"
XNAI_PORT_BASE="${XNAI_PORT_BASE:-17000}"
export XNAI_IMAGE

die() {
    echo "error: $*" >&2
    exit 1
}

say() {
    echo "== $*" >&2
}

case "$XNAI_PROFILE" in
release | debug) ;;
*) die "XNAI_PROFILE must be release or debug, got \"$XNAI_PROFILE\"" ;;
esac
command -v "$XNAI_ENGINE" >/dev/null || die "$XNAI_ENGINE not found (set XNAI_ENGINE=docker or podman)"

# The compose command as an array.
if [[ -n "${XNAI_COMPOSE:-}" ]]; then
    read -r -a COMPOSE_CMD <<<"$XNAI_COMPOSE"
elif [[ "$XNAI_ENGINE" == podman ]]; then
    COMPOSE_CMD=(podman-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE_CMD=(docker-compose)
else
    die "no compose tool: install docker compose, docker-compose or podman-compose"
fi

# Ports: exported so compose.yaml's ${XNAI_HEAD1_PORT} etc. see them.
export XNAI_HEAD1_PORT=$((XNAI_PORT_BASE + 1)) XNAI_HEAD2_PORT=$((XNAI_PORT_BASE + 2)) \
    XNAI_HEAD3_PORT=$((XNAI_PORT_BASE + 3)) XNAI_WORKER1_PORT=$((XNAI_PORT_BASE + 101)) \
    XNAI_WORKER2_PORT=$((XNAI_PORT_BASE + 102)) XNAI_WORKER3_PORT=$((XNAI_PORT_BASE + 103))

compose() {
    "${COMPOSE_CMD[@]}" -p "$XNAI_PROJECT" -f "$DEPLOY_DIR/compose.yaml" "$@"
}

# ---- Image provenance: SBOM + signature (see docs/PROVENANCE.md) ----
#   XNAI_SIGNING_KEY   ssh private key that signs images (default: XNAI_STATE_DIR/signing/
#                      xnai-image, an ed25519 key generated on first use)
#   XNAI_TRUSTED_KEY   ssh public key; when set, up.sh starts nothing unless the image's
#                      signature verifies with it (verify-image.sh does the same by hand)
#   XNAI_SIGNATURE_DIR where image.statement, its .sig and sbom.cdx.json live
#                      (default XNAI_STATE_DIR/provenance)
SIGN_NAMESPACE="xnai-image"
SIGNER_ID="xnai-image-signer"
XNAI_SIGNATURE_DIR="${XNAI_SIGNATURE_DIR:-$XNAI_STATE_DIR/provenance}"

# The image's content address (config digest), which any change to a layer changes.
image_id() {
    "$XNAI_ENGINE" image inspect -f '{{.Id}}' "$1" 2>/dev/null
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# sign_image IMAGE SBOM: write the statement (image id + SBOM digest) and sign it.
sign_image() {
    local image="$1" sbom="$2" key="${XNAI_SIGNING_KEY:-$XNAI_STATE_DIR/signing/xnai-image}"
    command -v ssh-keygen >/dev/null || die "ssh-keygen not found (apt-get install openssh-client)"
    if [[ ! -f "$key" ]]; then
        [[ -n "${XNAI_SIGNING_KEY:-}" ]] && die "XNAI_SIGNING_KEY=$key does not exist"
        mkdir -p "$(dirname "$key")"
        (umask 077 && ssh-keygen -q -t ed25519 -N '' -C "$SIGNER_ID" -f "$key") ||
            die "could not generate a signing key in $key"
        say "generated an image signing key $key (public half: $key.pub)"
    fi
    local id
    id="$(image_id "$image")" || die "image $image not found"
    mkdir -p "$XNAI_SIGNATURE_DIR"
    cp "$sbom" "$XNAI_SIGNATURE_DIR/sbom.cdx.json"
    local st="$XNAI_SIGNATURE_DIR/image.statement"
    printf 'xnai-image-statement v1\nimage %s\nid %s\nsbom-sha256 %s\n' \
        "$image" "$id" "$(sha256_of "$XNAI_SIGNATURE_DIR/sbom.cdx.json")" >"$st"
    rm -f "$st.sig"
    ssh-keygen -q -Y sign -f "$key" -n "$SIGN_NAMESPACE" "$st" >/dev/null 2>&1 ||
        die "signing $st with $key failed"
    say "signed $image ($id) and its SBOM: $st.sig"
}

# verify_image IMAGE PUBKEY: refuse (die) unless the signed statement names exactly this
# image's id and this SBOM, and the signature verifies with PUBKEY.
verify_image() {
    local image="$1" pubkey="$2" st="$XNAI_SIGNATURE_DIR/image.statement"
    command -v ssh-keygen >/dev/null || die "ssh-keygen not found (apt-get install openssh-client)"
    [[ -r "$pubkey" ]] || die "trusted key $pubkey is not readable"
    [[ -f "$st" && -f "$st.sig" ]] ||
        die "image $image has no signature in $XNAI_SIGNATURE_DIR (image.statement + .sig): refusing to start an unsigned image"
    local allowed
    allowed="$(mktemp)"
    printf '%s namespaces="%s" %s\n' "$SIGNER_ID" "$SIGN_NAMESPACE" "$(cut -d' ' -f1,2 "$pubkey")" >"$allowed"
    if ! ssh-keygen -Y verify -f "$allowed" -I "$SIGNER_ID" -n "$SIGN_NAMESPACE" \
        -s "$st.sig" <"$st" >/dev/null 2>&1; then
        rm -f "$allowed"
        die "the signature on $st does not verify with $pubkey: refusing to start (statement or signature altered, or signed with another key)"
    fi
    rm -f "$allowed"
    local want have sbom_want sbom_have
    want="$(awk '$1 == "id" { print $2 }' "$st")"
    have="$(image_id "$image")" || die "image $image not found"
    [[ "$want" == "$have" ]] ||
        die "image $image is $have but the signed image is $want: the image was modified or rebuilt without signing; refusing to start"
    sbom_want="$(awk '$1 == "sbom-sha256" { print $2 }' "$st")"
    [[ -f "$XNAI_SIGNATURE_DIR/sbom.cdx.json" ]] || die "the signed SBOM $XNAI_SIGNATURE_DIR/sbom.cdx.json is missing"
    sbom_have="$(sha256_of "$XNAI_SIGNATURE_DIR/sbom.cdx.json")"
    [[ "$sbom_want" == "$sbom_have" ]] ||
        die "the SBOM $XNAI_SIGNATURE_DIR/sbom.cdx.json was modified after signing (sha256 $sbom_have, signed $sbom_want); refusing to start"
    say "image $image ($have) verified: signed by $pubkey, SBOM intact"
}
