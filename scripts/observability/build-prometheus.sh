#!/usr/bin/env bash
# Build a binary of Prometheus v3.14.0 (the prom/prometheus:v3.14.0 image), the server
# (default) or promtool, and print its absolute path on stdout. Progress goes to stderr.
#
#   PROMETHEUS="$(scripts/observability/build-prometheus.sh)"
#   PROMTOOL="$(scripts/observability/build-prometheus.sh promtool)"
#
# Why not `go install`: Prometheus' go.mod carries replace/exclude directives, so `go install`
# refuses to build it. The module is downloaded with `go mod download` and the command is built
# inside a writable copy. Version mapping: Prometheus tags v3.Y.Z are published on the Go module
# proxy as v0.3YY.Z (the module path has no /v3 suffix), so v3.14.0 is module version v0.314.0;
# the module's VERSION file is checked to say 3.14.0.
# The server is built without the React web UI (its assets are not in the Go module); the HTTP
# API, which Grafana and the stack test use, is complete.
#
# Cached under $CACHE/tools/<binary>-3.14.0/bin/ (warm: a no-op). Cold on 2 cores: about 5
# minutes for the first of the two, seconds for the second (shared Go build cache). Environment:
# see build-otelcol.sh; PROMETHEUS_FORCE=1 rebuilds.
set -euo pipefail

PROM_VERSION=3.14.0 # must match the prom/prometheus image tag in docker-compose.yml
PROM_MODULE=github.com/prometheus/prometheus
PROM_MODULE_VERSION=v0.314.0

BINARY="${1:-prometheus}"
case "$BINARY" in
  prometheus | promtool) ;;
  *) echo "usage: $0 [prometheus|promtool]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

TOOL_DIR="$OBS_TOOLS/$BINARY-$PROM_VERSION"
BIN="$TOOL_DIR/bin/$BINARY"
if [ "${PROMETHEUS_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
mkdir -p "$TOOL_DIR/bin"
start=$SECONDS
obs_module_source "$PROM_MODULE" "$PROM_MODULE_VERSION" "$TOOL_DIR/src"
got="$(tr -d '[:space:]' <"$TOOL_DIR/src/VERSION")"
[ "$got" = "$PROM_VERSION" ] || obs_die "$PROM_MODULE@$PROM_MODULE_VERSION is Prometheus $got, expected $PROM_VERSION"
obs_log "building $BINARY $PROM_VERSION (cold: several minutes; log: $TOOL_DIR/build.log)"
ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROM_VERSION"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=HEAD"
ldflags="$ldflags -X github.com/prometheus/common/version.BuildUser=otel-rust-demo"
obs_go_build "$TOOL_DIR/src" "$TOOL_DIR/build.log" "$BIN" "./cmd/$BINARY" -ldflags "$ldflags"
# The sources are only needed for the build; keep the cache small.
rm -rf "$TOOL_DIR/src"
"$BIN" --version 2>&1 | grep -q "version $PROM_VERSION" || obs_die "unexpected $BINARY version: $("$BIN" --version 2>&1 | head -1)"
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
