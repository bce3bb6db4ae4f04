#!/usr/bin/env bash
# Build the OpenTelemetry Collector natively with the OpenTelemetry Collector Builder (ocb), from
# observability/otelcol-builder.yaml (exactly the components observability/otel-collector.yaml
# uses), and print the binary's absolute path on stdout. Progress goes to stderr.
#
#   OTELCOL="$(scripts/observability/build-otelcol.sh)"
#   "$OTELCOL" validate --config=observability/otel-collector.yaml
#
# Cached under $CACHE/tools/otelcol-<version>/ and keyed by the manifest's content: a warm run is
# a no-op (well under a second); editing the manifest triggers a rebuild. A cold build (empty
# cache, 2 cores) took 164 s; Go modules of this and build-promtool.sh together: 2.2 GB in
# $CACHE/go/mod, 2.5 GB in $CACHE/go/build (both deletable once the binaries are built).
#
# Environment:
#   OTEL_DEMO_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo)
#   OTELCOL_FORCE=1   rebuild even when cached
#   GOPROXY, GOFLAGS, GOSUMDB, GONOSUMDB are honoured. If the checksum database
#   (sum.golang.org) is unreachable the script falls back to GOSUMDB=off: the versions are pinned
#   and the Go module proxy serves immutable versions.
# Go modules and the build cache live under $CACHE/go/ (not ~/go), so the whole toolchain cache
# can be measured and deleted as one directory.
set -euo pipefail

OTELCOL_VERSION=0.159.0 # must match the otel/opentelemetry-collector-contrib image tag

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

MANIFEST="$ROOT/observability/otelcol-builder.yaml"
TOOL_DIR="$OBS_TOOLS/otelcol-$OTELCOL_VERSION"
BIN="$TOOL_DIR/build/otelcol-demo"
STAMP="$TOOL_DIR/.manifest.sha256"

[ -f "$MANIFEST" ] || obs_die "missing $MANIFEST"
want="$(sha256sum "$MANIFEST" | cut -d' ' -f1)"
if [ "${OTELCOL_FORCE:-0}" != 1 ] && [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
OCB="$(obs_go_install_tool ocb "$OTELCOL_VERSION" go.opentelemetry.io/collector/cmd/builder "v$OTELCOL_VERSION" builder)"

mkdir -p "$TOOL_DIR"
rm -rf "$TOOL_DIR/build" "$STAMP"
obs_log "building otelcol $OTELCOL_VERSION with ocb (cold: several minutes; log: $TOOL_DIR/build.log)"
start=$SECONDS
# output_path in the manifest is relative (./build): run ocb from the cache dir.
if ! (cd "$TOOL_DIR" && "$OCB" --config="$MANIFEST") >"$TOOL_DIR/build.log" 2>&1; then
  tail -n 30 "$TOOL_DIR/build.log" >&2
  obs_die "ocb failed to build the collector (full log: $TOOL_DIR/build.log)"
fi
[ -x "$BIN" ] || obs_die "ocb finished but $BIN is missing (log: $TOOL_DIR/build.log)"
version_line="$("$BIN" --version)"
case "$version_line" in
  *"$OTELCOL_VERSION"*) ;;
  *) obs_die "unexpected collector version: $version_line" ;;
esac
echo "$want" >"$STAMP"
obs_log "built $BIN in $((SECONDS - start))s ($version_line)"
echo "$BIN"
