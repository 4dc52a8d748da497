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
