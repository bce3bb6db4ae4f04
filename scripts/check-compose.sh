#!/usr/bin/env bash
# Checks docker-compose.yml + .env without Docker: tools/compose-check loads them with the
# compose-go project loader (the library Docker Compose uses) and checks the demo's rules
# (pinned images, bind mounts present, memory budget, ports, networks, dependencies, ...).
#
#   scripts/check-compose.sh                  exit 0 = all checks passed, 1 = a check failed,
#   scripts/check-compose.sh -f other.yml     2 = the file does not load; extra arguments go
#                                             to compose-check
#
# Needs Go >= 1.25 (the module proxy is used once to fetch compose-go). The binary is cached
# under ${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo}/tools/compose-check-<key>/,
# where <key> hashes go.sum together with go.mod and the Go sources: a key of go.sum alone
# would keep running a stale checker after main.go changes.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
SRC=tools/compose-check

command -v go >/dev/null || { echo "check-compose: go not found: install Go >= 1.25 (https://go.dev/dl/)" >&2; exit 1; }

key=$(cat "$SRC/go.sum" "$SRC/go.mod" "$SRC"/*.go | sha256sum | cut -c1-16)
bin="$CACHE/tools/compose-check-$key/compose-check"
if [ ! -x "$bin" ]; then
  echo "check-compose: building $SRC (cached as $bin)" >&2
  mkdir -p "$(dirname "$bin")"
  # -mod=readonly: go.sum is committed and complete, nothing is resolved anew.
  (cd "$SRC" && GOFLAGS=-mod=readonly go build -trimpath -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
exec "$bin" -f docker-compose.yml --env-file .env --project-dir . --test-overlay tests/stack/compose.override.yml "$@"
