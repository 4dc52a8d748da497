#!/usr/bin/env bash
# Build the image, start the compose deployment (3 Raft heads, 3 workers), wait until every
# service is healthy, and print as the LAST TWO lines:
#   XNAI_HEAD=127.0.0.1:PORT,127.0.0.1:PORT,127.0.0.1:PORT
#   XNAI_TOKEN=...
# The token comes from XNAI_TOKEN, else XNAI_STATE_DIR/token, else is generated there.
# XNAI_PROFILE=debug builds debug binaries (CI); XNAI_BIN_DIR reuses binaries already built;
# XNAI_SKIP_BUILD=1 reuses the image; XNAI_UP_TIMEOUT (seconds, default 180) bounds the wait.
# XNAI_TRUSTED_KEY=key.pub: start nothing unless the image's signature verifies (lib.sh).
# Other knobs: see deploy/lib.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$XNAI_STATE_DIR"
TOKEN_FILE="$XNAI_STATE_DIR/token"
if [[ -z "${XNAI_TOKEN:-}" ]]; then
    if [[ -s "$TOKEN_FILE" ]]; then
        XNAI_TOKEN="$(cat "$TOKEN_FILE")"
    else
        XNAI_TOKEN="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
        say "generated a cluster token in $TOKEN_FILE"
    fi
fi
(umask 077 && printf '%s\n' "$XNAI_TOKEN" >"$TOKEN_FILE")
export XNAI_TOKEN

if [[ "${XNAI_SKIP_BUILD:-0}" != 1 ]]; then
    "$DEPLOY_DIR/build-image.sh"
fi
"$XNAI_ENGINE" image inspect "$XNAI_IMAGE" >/dev/null 2>&1 ||
    die "image $XNAI_IMAGE not found: run deploy/build-image.sh"
if [[ -n "${XNAI_TRUSTED_KEY:-}" ]]; then
    verify_image "$XNAI_IMAGE" "$XNAI_TRUSTED_KEY"
fi

HEADS=3
WORKERS=3
# Each worker offers its share of the host's cores (at least 1), not all of them; memory per
# worker is XNAI_WORKER_MEMORY (448MiB by default, inside its 1g mem_limit with the arena).
if [[ -z "${XNAI_WORKER_CPUS:-}" ]]; then
    cores="$(nproc 2>/dev/null || echo 1)"
    XNAI_WORKER_CPUS=$((cores / WORKERS))
    ((XNAI_WORKER_CPUS >= 1)) || XNAI_WORKER_CPUS=1
fi
export XNAI_WORKER_CPUS
XNAI_HEAD_LIST="127.0.0.1:$XNAI_HEAD1_PORT,127.0.0.1:$XNAI_HEAD2_PORT,127.0.0.1:$XNAI_HEAD3_PORT"
SERVICES=$((HEADS + WORKERS))

say "${COMPOSE_CMD[*]} up: $HEADS heads, $WORKERS workers of $XNAI_WORKER_CPUS CPU(s) and ${XNAI_WORKER_MEMORY:-448MiB} each (project $XNAI_PROJECT)"
compose up -d --remove-orphans >&2 || die "compose up failed"

# Wait until every container reports healthy; fail fast on one that exits.
TIMEOUT="${XNAI_UP_TIMEOUT:-180}"
DEADLINE=$((SECONDS + TIMEOUT))
while :; do
    mapfile -t IDS < <(compose ps -q 2>/dev/null)
    healthy=0
    for id in "${IDS[@]}"; do
        state="$("$XNAI_ENGINE" inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || true)"
        read -r name status health <<<"$state"
        case "$status" in
        exited | dead)
            "$XNAI_ENGINE" logs --tail 20 "$id" >&2 || true
            die "container ${name#/} $status before it became healthy (its last log lines are above)"
            ;;
        esac
        [[ "${health:-}" == healthy ]] && healthy=$((healthy + 1))
    done
    if ((healthy == SERVICES && ${#IDS[@]} == SERVICES)); then
        break
    fi
    if ((SECONDS > DEADLINE)); then
        compose ps >&2 || true
        die "only $healthy of $SERVICES services healthy after ${TIMEOUT}s (see: ${COMPOSE_CMD[*]} -p $XNAI_PROJECT logs)"
    fi
    sleep 1
done
say "all $SERVICES services healthy"

printf 'XNAI_HEAD=%s\nXNAI_TOKEN=%s\n' "$XNAI_HEAD_LIST" "$XNAI_TOKEN" >"$XNAI_STATE_DIR/env"
chmod 600 "$XNAI_STATE_DIR/env"
echo "XNAI_HEAD=$XNAI_HEAD_LIST"
echo "XNAI_TOKEN=$XNAI_TOKEN"
