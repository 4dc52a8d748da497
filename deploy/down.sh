#!/usr/bin/env bash
# Stop the compose deployment and remove its containers and networks. Named volumes (the heads'
# sled data) are kept unless --volumes is given. Same environment knobs as up.sh (deploy/lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DOWN_ARGS=(down --remove-orphans)
case "${1:-}" in
"") ;;
--volumes | -v) DOWN_ARGS+=(--volumes) ;;
*) die "usage: deploy/down.sh [--volumes]" ;;
esac

# The token only has to satisfy compose's interpolation here.
export XNAI_TOKEN="${XNAI_TOKEN:-unused}"
compose "${DOWN_ARGS[@]}" >&2 || die "compose down failed"
left="$("$XNAI_ENGINE" ps -aq --filter "label=com.docker.compose.project=$XNAI_PROJECT")"
[[ -z "$left" ]] || die "containers of project $XNAI_PROJECT are still there: $left"
say "project $XNAI_PROJECT is down"
