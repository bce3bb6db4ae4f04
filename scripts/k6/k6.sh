#!/usr/bin/env bash
# Runs k6 v2.2.0 (the version of the grafana/k6 image in docker-compose.yml) without Docker:
# builds it once from the Go module proxy into the cache, then execs it with the arguments.
#
#   scripts/k6/k6.sh run scripts/k6/smoke.js
#   scripts/k6/k6.sh inspect scripts/k6/load.js
#   K6_PATH_ONLY=1 scripts/k6/k6.sh          prints the binary's path (building it if needed)
#
# Cache: ${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo}/tools/k6-2.2.0/k6.
# Needs Go >= 1.25. A cold build takes a few minutes (3.5 min on 2 cores).
#
# How: `go install go.k6.io/k6/v2@v2.2.0` first. Some module proxies (mirrors) do not serve
# the version list that `go install pkg@version` consults for deprecations, and the checksum
# database may be unreachable; then a throwaway wrapper module that requires exactly
# go.k6.io/k6/v2 v2.2.0 builds the same main package instead (GOSUMDB=off only there).
set -euo pipefail

K6_VERSION=2.2.0
CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
DIR="$CACHE/tools/k6-$K6_VERSION"
BIN="$DIR/k6"

say() { printf 'k6.sh: %s\n' "$*" >&2; }

build() {
  command -v go >/dev/null || { say "go not found: install Go >= 1.25 (https://go.dev/dl/)"; exit 1; }
  mkdir -p "$DIR"
  local start=$SECONDS
  say "building k6 v$K6_VERSION into $DIR (one time, a few minutes)"
  if GOBIN="$DIR" go install "go.k6.io/k6/v2@v$K6_VERSION" 2>"$DIR/go-install.log"; then
    :
  else
    say "go install failed ($(tail -n 1 "$DIR/go-install.log")); building through a wrapper module"
    local src="$DIR/src"
    rm -rf "$src" && mkdir -p "$src"
    cat >"$src/go.mod" <<EOF
module k6build

go 1.25.0

require go.k6.io/k6/v2 v$K6_VERSION
EOF
    (cd "$src" && GOFLAGS=-mod=mod GOSUMDB="${GOSUMDB:-off}" go build -trimpath -o "$BIN.tmp" go.k6.io/k6/v2)
    mv "$BIN.tmp" "$BIN"
  fi
  "$BIN" version >&2
  say "built in $((SECONDS - start)) s"
}

[ -x "$BIN" ] || build
if [ -n "${K6_PATH_ONLY:-}" ]; then
  echo "$BIN"
  exit 0
fi
exec "$BIN" "$@"
