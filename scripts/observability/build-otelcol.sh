#!/usr/bin/env bash
# Build the OpenTelemetry Collector natively from the committed Go module tools/otelcol/ (which
# scripts/observability/generate-otelcol.sh generates with ocb from
# observability/otelcol-builder.yaml: exactly the components observability/otel-collector.yaml
# uses) and print the binary's absolute path on stdout. Progress goes to stderr.
#
#   OTELCOL="$(scripts/observability/build-otelcol.sh)"
#   "$OTELCOL" validate --config=observability/otel-collector.yaml
#
# `go build -mod=readonly`: go.sum is committed and complete, so nothing is resolved at build time.
# Cached under $CACHE/tools/otelcol-<version>-<hash of tools/otelcol's files>/: a warm run is a
# no-op; regenerating the module rebuilds. Environment: OTEL_DEMO_CACHE (see lib.sh);
# OTELCOL_FORCE=1 rebuilds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

SRC="$ROOT/tools/otelcol"
[ -f "$SRC/go.sum" ] || obs_die "missing $SRC/go.sum: run scripts/observability/generate-otelcol.sh"
# The version ocb wrote into main.go from the manifest's dist.version (the image tag).
VERSION="$(sed -n 's/^[[:space:]]*Version:[[:space:]]*"\(.*\)",$/\1/p' "$SRC/main.go")"
[ -n "$VERSION" ] || obs_die "no Version in $SRC/main.go"
TOOL_DIR="$OBS_TOOLS/otelcol-$VERSION-$(obs_files_key "$SRC"/go.mod "$SRC"/go.sum "$SRC"/*.go)"
BIN="$TOOL_DIR/otelcol-demo"
if [ "${OTELCOL_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
start=$SECONDS
obs_log "building otelcol $VERSION from tools/otelcol (cold: minutes; log: $TOOL_DIR/build.log)"
# -s -w: what ocb itself passes (no symbols, a smaller binary).
obs_go_build "$SRC" "$TOOL_DIR/build.log" "$BIN" . -ldflags "-s -w"
version_line="$("$BIN" --version 2>&1)" || true
case "$version_line" in
  *" $VERSION") ;;
  # Deleted, or the next (warm) run would use it unchecked.
  *) rm -f "$BIN"; obs_die "unexpected collector version: $version_line (expected $VERSION)" ;;
esac
obs_log "built $BIN in $((SECONDS - start))s ($version_line)"
echo "$BIN"
