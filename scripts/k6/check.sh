#!/usr/bin/env bash
# Static check of the k6 scripts, no stack and no k6 needed (k6 is AGPL: this project never
# fetches or builds it). tools/k6-check parses each script with acorn and checks it against
# the services: imports, options, scenarios, thresholds, every request's route and method in
# the Rust routers, fault bodies, and the __ENV variables (see tools/k6-check/check.mjs).
# Then its self-test breaks copies of the scripts and services and requires a FAIL for each.
#
#   scripts/k6/check.sh        exit 0 = all ok, 1 = a check (or the self-test) failed
#
# Needs Node >= 20 and npm. acorn (pinned in tools/k6-check/package-lock.json, integrity
# checked by `npm ci`) is installed once into a cache outside the repository:
# ${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo}/tools/k6-check-<hash of the lockfile>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

SRC=tools/k6-check
CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
command -v node >/dev/null || { echo "k6 check: node not found: install Node >= 20" >&2; exit 1; }

key=$(sha256sum "$SRC/package-lock.json" | cut -c1-16)
deps="$CACHE/tools/k6-check-$key"
# .complete is written last, so an interrupted install is redone, not used.
if [ ! -e "$deps/.complete" ]; then
  command -v npm >/dev/null || { echo "k6 check: npm not found" >&2; exit 1; }
  echo "k6 check: installing $SRC's dependencies into $deps" >&2
  rm -rf "$deps" && mkdir -p "$deps"
  cp "$SRC/package.json" "$SRC/package-lock.json" "$deps/"
  (cd "$deps" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  touch "$deps/.complete"
fi

status=0
node "$SRC/check.mjs" --deps "$deps" || status=1
node "$SRC/selftest.mjs" --deps "$deps" || status=1
exit $status
