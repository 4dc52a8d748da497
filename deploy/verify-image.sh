#!/usr/bin/env bash
# Check, without starting anything, that the image XNAI_IMAGE is exactly the one signed with the
# trusted key (XNAI_TRUSTED_KEY, or the first argument) and that its SBOM is the signed one.
# Exit 0 and one line on success; exit 1 with the reason otherwise. up.sh runs the same check
# before it starts a deployment whenever XNAI_TRUSTED_KEY is set.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KEY="${1:-${XNAI_TRUSTED_KEY:-}}"
[[ -n "$KEY" ]] || die "usage: verify-image.sh KEY.pub (or set XNAI_TRUSTED_KEY)"
verify_image "$XNAI_IMAGE" "$KEY"
