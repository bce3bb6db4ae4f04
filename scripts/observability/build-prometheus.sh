#!/usr/bin/env bash
# Build the Prometheus server v3.14.0 (the prom/prometheus:v3.14.0 image) and print the binary's
# absolute path on stdout. Progress goes to stderr.
#
#   PROMETHEUS="$(scripts/observability/build-prometheus.sh)"
#
# Same module and version mapping as build-promtool.sh (v3.14.0 is module version v0.314.0).
# Built without the React web UI (its assets are not in the Go module); the HTTP API, which is
# what Grafana and the stack test use, is complete.
# Cached under $CACHE/tools/prometheus-3.14.0/. Environment: see build-otelcol.sh;
# PROMETHEUS_FORCE=1 rebuilds.
set -euo pipefail

PROM_VERSION=3.14.0 # must match the prom/prometheus image tag in docker-compose.yml
PROM_MODULE=github.com/prometheus/prometheus
PROM_MODULE_VERSION=v0.314.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

TOOL_DIR="$OBS_TOOLS/prometheus-$PROM_VERSION"
BIN="$TOOL_DIR/bin/prometheus"
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
obs_log "building prometheus $PROM_VERSION (cold: several minutes; log: $TOOL_DIR/build.log)"
ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROM_VERSION"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=HEAD"
ldflags="$ldflags -X github.com/prometheus/common/version.BuildUser=otel-rust-demo"
obs_go_build "$TOOL_DIR/src" "$TOOL_DIR/build.log" "$BIN" ./cmd/prometheus -ldflags "$ldflags"
rm -rf "$TOOL_DIR/src"
"$BIN" --version 2>&1 | grep -q "version $PROM_VERSION" || obs_die "unexpected prometheus version: $("$BIN" --version 2>&1 | head -1)"
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
