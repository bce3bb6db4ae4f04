#!/usr/bin/env bash
# Build `promtool` from Prometheus v3.14.0 (the prom/prometheus:v3.14.0 image) and print the
# binary's absolute path on stdout. Progress goes to stderr.
#
#   PROMTOOL="$(scripts/observability/build-promtool.sh)"
#   "$PROMTOOL" check config observability/prometheus.yml
#
# Why not `go install`: Prometheus' go.mod carries replace/exclude directives, so
# `go install github.com/prometheus/prometheus/cmd/promtool@...` refuses to build. Instead the
# module is downloaded with `go mod download` and cmd/promtool is built inside a writable copy.
# Version mapping: Prometheus tags v3.Y.Z are published on the Go module proxy as v0.3YY.Z
# (the module path has no /v3 suffix), so v3.14.0 is module version v0.314.0; the module's
# VERSION file is checked to say 3.14.0.
#
# Cached under $CACHE/tools/promtool-3.14.0/ (warm run: no-op; cold, 2 cores: about 5 minutes,
# most of it compiling the service-discovery SDKs promtool links in). Environment: see build-otelcol.sh
# (OTEL_DEMO_CACHE, GOPROXY/GOFLAGS/GOSUMDB); PROMTOOL_FORCE=1 rebuilds.
set -euo pipefail

PROM_VERSION=3.14.0
PROM_MODULE=github.com/prometheus/prometheus
PROM_MODULE_VERSION=v0.314.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

TOOL_DIR="$OBS_TOOLS/promtool-$PROM_VERSION"
BIN="$TOOL_DIR/bin/promtool"

if [ "${PROMTOOL_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
mkdir -p "$TOOL_DIR/bin"
start=$SECONDS
obs_module_source "$PROM_MODULE" "$PROM_MODULE_VERSION" "$TOOL_DIR/src"
got="$(tr -d '[:space:]' <"$TOOL_DIR/src/VERSION")"
[ "$got" = "$PROM_VERSION" ] || obs_die "$PROM_MODULE@$PROM_MODULE_VERSION is Prometheus $got, expected $PROM_VERSION"
obs_log "building promtool $PROM_VERSION (cold: a few minutes; log: $TOOL_DIR/build.log)"
ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROM_VERSION"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=HEAD"
ldflags="$ldflags -X github.com/prometheus/common/version.BuildUser=otel-rust-demo"
obs_go_build "$TOOL_DIR/src" "$TOOL_DIR/build.log" "$BIN" ./cmd/promtool -ldflags "$ldflags"
# The sources are only needed for the build; keep the cache small.
rm -rf "$TOOL_DIR/src"
"$BIN" --version 2>&1 | grep -q "version $PROM_VERSION" || obs_die "unexpected promtool version: $("$BIN" --version 2>&1 | head -1)"
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
