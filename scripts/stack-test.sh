#!/usr/bin/env bash
# The stack test (tests/stack), against one of two stacks built from the same compose files:
#
#   scripts/stack-test.sh native    scripts/dev-stack.sh up --observability: the services,
#                                   Postgres, Kafka, the collector and Prometheus natively,
#                                   otlp-sink where Tempo and Loki receive (scripts/test.sh)
#   scripts/stack-test.sh compose   docker compose up with tests/stack/compose.override.yml
#                                   (needs Docker): Tempo's and Loki's real APIs as well
#
# Either way: build the load tool, bring the stack up and wait until it is ready, run
# pytest, bring it down (compose: with its volumes), exit with pytest's status. The log is
# written to $OTEL_DEMO_CACHE/stack-test.log; natively, the peak memory of every process of the
# stack, with the load it ran under, to $OTEL_DEMO_STATE/stack-test-memory.json.
#   PYTHON      an interpreter with pytest and PyYAML (default: a venv made here with pytest
#               8.4.2 and PyYAML 6.0.3; the dashboard test runs scripts/grafana/check_dashboards.py)
#   OTELCOL_SET native: collector settings changed for this run only (see scripts/dev-stack.sh)
#   ALERT_TIME_SCALE  native: how many times faster the alert rules run (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${1:-}"
case "$TARGET" in
  native | compose) ;;
  *) echo "usage: $0 native|compose" >&2; exit 2 ;;
esac
CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PYTEST_VERSION=8.4.2
PYYAML_VERSION=6.0.3
LOG="$CACHE/stack-test.log"
mkdir -p "$CACHE"

say() { printf 'stack-test: %s\n' "$*" >&2; }

if [ -z "${PYTHON:-}" ]; then
  venv="$CACHE/python-stack-test-pytest$PYTEST_VERSION-yaml$PYYAML_VERSION"
  if ! "$venv/bin/python" -c 'import pytest, yaml' 2>/dev/null; then
    rm -rf "$venv" && python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "pytest==$PYTEST_VERSION" "pyyaml==$PYYAML_VERSION"
  fi
  PYTHON="$venv/bin/python"
fi

say "building the load tool (crates/load)"
cargo build --locked --workspace --bins --all-features >&2
export LOAD_BIN="$CARGO_TARGET_DIR/debug/load"

COMPOSE=(docker compose -f docker-compose.yml -f tests/stack/compose.override.yml)
if [ "$TARGET" = native ]; then
  trap 'scripts/dev-stack.sh down >/dev/null 2>&1 || true' EXIT
  # The alert rules 20 times faster (same rules, shorter windows): tests/stack/test_alerts.py
  # fires and resolves them with a fault of about a minute.
  export ALERT_TIME_SCALE="${ALERT_TIME_SCALE:-20}"
  # The services' OTLP metrics every 5 s instead of compose's 15 s: at that scale the rules'
  # 5-minute windows are 15 s long and must hold two samples of a pushed counter too.
  export OTEL_METRIC_EXPORT_INTERVAL="${OTEL_METRIC_EXPORT_INTERVAL:-5000}"
  AMTOOL="$(dirname "$(scripts/observability/build-alertmanager.sh)")/amtool"
  export AMTOOL
  scripts/dev-stack.sh up --observability
else
  trap '"${COMPOSE[@]}" down -v >/dev/null 2>&1 || true' EXIT
  # The services' fault endpoints and the tokens come from .env, as users get them.
  set -a && . ./.env && set +a
  "${COMPOSE[@]}" up -d --build --wait --wait-timeout 600
fi

rc=0
(cd tests/stack && STACK_TARGET="$TARGET" "$PYTHON" -m pytest -v -s -p no:cacheprovider .) 2>&1 |
  tee "$LOG" || rc=$?
if [ "$rc" != 0 ] && [ "$TARGET" = compose ]; then
  "${COMPOSE[@]}" ps -a >&2
  "${COMPOSE[@]}" logs --no-color --tail 80 >&2
fi
exit "$rc"
