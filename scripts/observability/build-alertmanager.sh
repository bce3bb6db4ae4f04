#!/usr/bin/env bash
# Build Alertmanager v0.35.0 (the prom/alertmanager:v0.35.0 image) and its amtool, and print
# the alertmanager binary's absolute path on stdout (amtool lies next to it). Progress goes to
# stderr.
#
#   ALERTMANAGER="$(scripts/observability/build-alertmanager.sh)"
#
# Built from the wrapper module tools/alertmanager (committed go.mod + go.sum): its modules are
# downloaded and verified against go.sum, then vendored (see below for why); the module's
# version is checked. Cached under
# $CACHE/tools/alertmanager-0.35.0-<hash of go.mod + go.sum>/ (warm: a no-op).
# Environment: OTEL_DEMO_CACHE (see lib.sh); ALERTMANAGER_FORCE=1 rebuilds.
set -euo pipefail

AM_VERSION=0.35.0 # must match the prom/alertmanager image tag in docker-compose.yml
AM_MODULE=github.com/prometheus/alertmanager

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

SRC="$ROOT/tools/alertmanager"
TOOL_DIR="$OBS_TOOLS/alertmanager-$AM_VERSION-$(obs_files_key "$SRC/go.mod" "$SRC/go.sum")"
BIN="$TOOL_DIR/alertmanager"
if [ "${ALERTMANAGER_FORCE:-0}" != 1 ] && [ -x "$BIN" ] && [ -x "$TOOL_DIR/amtool" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
start=$SECONDS
obs_log "building alertmanager $AM_VERSION from tools/alertmanager (log: $TOOL_DIR/build.log)"
got="$(cd "$SRC" && go list -mod=readonly -m -f '{{.Version}}' "$AM_MODULE")"
[ "$got" = "v$AM_VERSION" ] || obs_die "tools/alertmanager/go.mod requires Alertmanager $got, expected v$AM_VERSION"
# The module ships without its compiled web UI, which ui/web.go embeds (//go:embed app/dist), so
# it cannot compile from the module alone. So: vendor the verified modules into a build copy of
# the wrapper module, put a one-page stand-in where the UI's build output would be, and build
# from the vendor tree. The API (/api/v2), which Prometheus and the stack test use, is complete;
# the image has the real UI.
build="$TOOL_DIR/src"
rm -rf "$build" && mkdir -p "$build"
cp "$SRC/go.mod" "$SRC/go.sum" "$build/"
(cd "$build" && go mod vendor -e) >"$TOOL_DIR/vendor.log" 2>&1 || { tail -n 20 "$TOOL_DIR/vendor.log" >&2; obs_die "go mod vendor failed in $build"; }
for ui in elm mantine; do
  mkdir -p "$build/vendor/$AM_MODULE/ui/app/dist/$ui"
  echo "This Alertmanager build has no web UI; the API is at /api/v2." >"$build/vendor/$AM_MODULE/ui/app/dist/$ui/index.html"
done
ldflags="-s -w -X github.com/prometheus/common/version.Version=$AM_VERSION"
mkdir -p "$(dirname "$BIN")"
# amtool too (the same module): the README's "silence an alert" command, which the stack
# test runs.
rm -rf "$TOOL_DIR/bin.tmp" && mkdir -p "$TOOL_DIR/bin.tmp"
if ! (cd "$build" && go build -mod=vendor -trimpath -tags "$OBS_GO_TAGS" -ldflags "$ldflags" \
  -o "$TOOL_DIR/bin.tmp/" "$AM_MODULE/cmd/alertmanager" "$AM_MODULE/cmd/amtool") >"$TOOL_DIR/build.log" 2>&1; then
  tail -n 30 "$TOOL_DIR/build.log" >&2
  obs_die "building alertmanager failed (full log: $TOOL_DIR/build.log)"
fi
mv "$TOOL_DIR/bin.tmp/amtool" "$TOOL_DIR/amtool"
mv "$TOOL_DIR/bin.tmp/alertmanager" "$BIN"
rmdir "$TOOL_DIR/bin.tmp"
rm -rf "$build"
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
