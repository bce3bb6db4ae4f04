#!/usr/bin/env bash
# Build Helm v3.22.0 (Apache-2.0) from its Go module and print the binary's absolute path on
# stdout. Progress goes to stderr. The chart checks (scripts/helm/check-chart.sh) lint and render
# with it; nothing here talks to a cluster.
#
#   HELM="$(scripts/helm/build-helm.sh)"
#
# Built from the wrapper module tools/helm (committed go.mod + go.sum) with -mod=readonly, the
# way scripts/observability/build-prometheus.sh builds Prometheus. The ldflags are the ones
# Helm's Makefile sets: the version, and the Kubernetes version Helm assumes without a cluster
# (.Capabilities.KubeVersion, the deprecation lint), which the Makefile derives from client-go
# v0.X.Y as 1.X; left unset it would be 1.20.
#
# Cached under $CACHE/tools/helm-3.22.0-<hash of go.mod + go.sum>/ (warm: a no-op).
# Environment: OTEL_DEMO_CACHE (see scripts/observability/lib.sh); HELM_FORCE=1 rebuilds.
set -euo pipefail

HELM_VERSION=3.22.0
HELM_MODULE=helm.sh/helm/v3

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

SRC="$ROOT/tools/helm"
TOOL_DIR="$OBS_TOOLS/helm-$HELM_VERSION-$(obs_files_key "$SRC/go.mod" "$SRC/go.sum")"
BIN="$TOOL_DIR/bin/helm"
if [ "${HELM_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
start=$SECONDS
obs_log "building helm $HELM_VERSION from tools/helm (cold: minutes; log: $TOOL_DIR/build.log)"
got="$(cd "$SRC" && go list -mod=readonly -m -f '{{.Version}}' "$HELM_MODULE")"
[ "$got" = "v$HELM_VERSION" ] || obs_die "tools/helm/go.mod requires Helm $got, expected v$HELM_VERSION"
client_go="$(cd "$SRC" && go list -mod=readonly -m -f '{{.Version}}' k8s.io/client-go)" # v0.X.Y
kube_minor="$(cut -d. -f2 <<<"$client_go")"
ldflags="-s -w -X $HELM_MODULE/internal/version.version=v$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags="$ldflags -X $HELM_MODULE/$pkg.k8sVersionMajor=1 -X $HELM_MODULE/$pkg.k8sVersionMinor=$kube_minor"
done
obs_go_build "$SRC" "$TOOL_DIR/build.log" "$BIN" "$HELM_MODULE/cmd/helm" -ldflags "$ldflags"
version_out="$("$BIN" version --template '{{.Version}}' 2>&1)" || true
# Deleted, or the next (warm) run would use it unchecked.
[ "$version_out" = "v$HELM_VERSION" ] || { rm -f "$BIN"; obs_die "unexpected helm version: $version_out"; }
obs_log "built $BIN in $((SECONDS - start))s (Kubernetes 1.$kube_minor assumed offline)"
echo "$BIN"
