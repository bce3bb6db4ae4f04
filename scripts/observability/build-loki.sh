#!/usr/bin/env bash
# Build Loki v3.7.6 (the grafana/loki:3.7.6 image) and print the binary's absolute path on
# stdout. Progress goes to stderr.
#
#   LOKI="$(scripts/observability/build-loki.sh)"
#   "$LOKI" -config.file=observability/loki.yaml -config.expand-env=true
#
# Loki's go.mod replaces its nested module github.com/grafana/loki/pkg/push with ./pkg/push, but
# a module zip never contains nested modules, so the copy cannot build as published. The script
# points that replace at the module version Loki's own go.mod requires, from the module proxy.
# Cached under $CACHE/tools/loki-3.7.6/. Environment: see build-otelcol.sh; LOKI_FORCE=1 rebuilds.
set -euo pipefail

LOKI_VERSION=3.7.6 # must match the grafana/loki image tag in docker-compose.yml
LOKI_MODULE=github.com/grafana/loki/v3

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

TOOL_DIR="$OBS_TOOLS/loki-$LOKI_VERSION"
BIN="$TOOL_DIR/bin/loki"
if [ "${LOKI_FORCE:-0}" != 1 ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

obs_go_env
mkdir -p "$TOOL_DIR/bin"
start=$SECONDS
src="$TOOL_DIR/src"
obs_module_source "$LOKI_MODULE" "v$LOKI_VERSION" "$src"
push_version="$(cd "$src" && go mod edit -json | sed -n '/"Path": "github.com\/grafana\/loki\/pkg\/push"/{n;s/.*"Version": "\(.*\)".*/\1/p;q}')"
[ -n "$push_version" ] || obs_die "Loki's go.mod no longer requires github.com/grafana/loki/pkg/push"
(cd "$src" && go mod edit -replace "github.com/grafana/loki/pkg/push=github.com/grafana/loki/pkg/push@$push_version")
obs_log "building loki $LOKI_VERSION (cold: several minutes; log: $TOOL_DIR/build.log)"
obs_go_build "$src" "$TOOL_DIR/build.log" "$BIN" ./cmd/loki \
  -ldflags "-s -w -X github.com/grafana/loki/v3/pkg/util/build.Version=$LOKI_VERSION -X github.com/grafana/loki/v3/pkg/util/build.Branch=HEAD"
rm -rf "$src"
"$BIN" -version 2>&1 | grep -q "version $LOKI_VERSION" || obs_die "unexpected loki version: $("$BIN" -version 2>&1 | head -1)"
obs_log "built $BIN in $((SECONDS - start))s"
echo "$BIN"
