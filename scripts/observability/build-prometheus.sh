#!/usr/bin/env bash
# Build a binary of Prometheus v3.14.0 (the prom/prometheus:v3.14.0 image), the server
# (default) or promtool, and print its absolute path on stdout. Progress goes to stderr.
#
#   PROMETHEUS="$(scripts/observability/build-prometheus.sh)"
#   PROMTOOL="$(scripts/observability/build-prometheus.sh promtool)"
#
# Built from the wrapper module tools/prometheus (committed go.mod + go.sum, with upstream's
# replace/exclude lines) with -mod=readonly: Prometheus' own go.mod carries replace/exclude
# directives, so `go install` refuses it. Prometheus v3.Y.Z is module version v0.3YY.Z; the
# module's VERSION file is checked to say 3.14.0. Built without the React web UI (its assets are
# not in the Go module); the HTTP API, which Grafana and the stack test use, is complete.
#
# Cached under $CACHE/tools/prometheus-3.14.0-<hash of go.mod + go.sum>/bin/ (warm: a no-op;
# editing the wrapper module rebuilds). Environment: OTEL_DEMO_CACHE (see lib.sh);
# PROMETHEUS_FORCE=1 rebuilds.
set -euo pipefail

PROM_VERSION=3.14.0 # must match the prom/prometheus image tag in docker-compose.yml
PROM_MODULE=github.com/prometheus/prometheus

BINARY="${1:-prometheus}"
case "$BINARY" in
  prometheus | promtool) ;;
  *) echo "usage: $0 [prometheus|promtool]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

SRC="$ROOT/tools/prometheus"
TOOL_DIR="$OBS_TOOLS/prometheus-$PROM_VERSION-$(obs_files_key "$SRC/go.mod" "$SRC/go.sum")"
BIN="$TOOL_DIR/bin/$BINARY"
if [ "${PROMETHEUS_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
start=$SECONDS
obs_log "building $BINARY $PROM_VERSION from tools/prometheus (cold: minutes; log: $TOOL_DIR/$BINARY.log)"
ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROM_VERSION"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=HEAD"
ldflags="$ldflags -X github.com/prometheus/common/version.BuildUser=otel-rust-demo"
obs_go_build "$SRC" "$TOOL_DIR/$BINARY.log" "$BIN" "$PROM_MODULE/cmd/$BINARY" -ldflags "$ldflags"
# The ldflags set the version string; the module's VERSION file says what was actually built.
moddir="$(cd "$SRC" && go list -mod=readonly -m -f '{{.Dir}}' "$PROM_MODULE")"
got="$(tr -d '[:space:]' <"$moddir/VERSION")"
# A wrong binary is deleted, or the next (warm) run would use it unchecked.
[ "$got" = "$PROM_VERSION" ] || { rm -f "$BIN"; obs_die "tools/prometheus/go.mod requires Prometheus $got, expected $PROM_VERSION"; }
version_out="$("$BIN" --version 2>&1)" || true
case "$version_out" in
  *"version $PROM_VERSION "*) ;;
  *) rm -f "$BIN"; obs_die "unexpected $BINARY version: ${version_out%%$'\n'*}" ;;
esac
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
