#!/usr/bin/env bash
# Deletes the Kind cluster deploy/kind/up.sh made, with everything in it (the images loaded
# onto its nodes included; the ones in the local Docker engine stay).
# Usage: deploy/kind/down.sh      Env: KIND_CLUSTER_NAME (default nimbusguard)
set -euo pipefail

cluster="${KIND_CLUSTER_NAME:-nimbusguard}"
command -v kind >/dev/null || {
  echo "deploy/kind/down.sh: kind not found on PATH" >&2
  exit 1
}
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind delete cluster --name "$cluster"
else
  echo "deploy/kind/down.sh: no Kind cluster named '$cluster'; nothing to delete" >&2
fi
