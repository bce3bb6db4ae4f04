#!/usr/bin/env bash
# The project's test command; CI runs it through .ci/run.
#
# Installs what it needs by itself (a C toolchain and zlib for librdkafka, a Python venv
# with the OpenMetrics reference parser, Postgres and Kafka through scripts/infra.sh) and
# caches builds and downloads outside the repository, so a fresh clone on a warm machine
# only rebuilds the workspace crates. Postgres and Kafka are stopped again at the end
# unless DATABASE_URL and KAFKA_BROKERS were given (then they are used as they are).
#   OTEL_DEMO_CACHE   cache directory (default: ~/.cache/otel-rust-demo)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PROMETHEUS_CLIENT_VERSION=0.23.1
PYTEST_VERSION=8.4.2
mkdir -p "$CACHE"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1
  fi
}

ensure_system_packages() {
  local missing=()
  command -v cc >/dev/null || missing+=(gcc)
  command -v make >/dev/null || missing+=(make)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# One Python venv for the test tools: the OpenMetrics reference parser (prometheus_client)
# validates /metrics output; pytest runs the stack test (tests/stack).
ensure_python_tools() {
  local venv="$CACHE/python-tools-pc$PROMETHEUS_CLIENT_VERSION-pytest$PYTEST_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client, pytest' 2>/dev/null; then
    step "installing prometheus-client $PROMETHEUS_CLIENT_VERSION and pytest $PYTEST_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "pytest==$PYTEST_VERSION"
  fi
  export OPENMETRICS_PYTHON="$venv/bin/python"
}

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
ensure_system_packages
ensure_python_tools

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# The end-to-end tests run the real binaries against real Postgres and Kafka.
step "building the service binaries"
cargo build --workspace --bins --locked

step "starting Postgres and Kafka (scripts/infra.sh)"
STARTED_INFRA=false
if [ -z "${DATABASE_URL:-}" ] || [ -z "${KAFKA_BROKERS:-}" ]; then
  eval "$(scripts/infra.sh up)"
  export DATABASE_URL KAFKA_BROKERS
  STARTED_INFRA=true
  trap 'scripts/infra.sh down || true' EXIT
fi

# --all-targets also runs the criterion benchmarks once each in test mode, so a broken
# benchmark fails here; the figures come from `cargo bench` (docs/BENCHMARKS.md).
# Two versions of an OpenTelemetry crate mean two globals: propagation silently stops.
step "one version of each OpenTelemetry crate"
tree=$(cargo tree --workspace --all-features --locked -d -e normal,build)
duplicates=$(grep -E '^(opentelemetry|tracing-opentelemetry)' <<<"$tree" || true)
if [ -n "$duplicates" ]; then
  echo "duplicate OpenTelemetry crates in the dependency graph:" >&2
  echo "$duplicates" >&2
  exit 1
fi

step "cargo test (unit, integration, benchmark smoke)"
TEST_LOG="$CACHE/cargo-test.log"
cargo test --workspace --all-targets --all-features --locked 2>&1 | tee "$TEST_LOG"

step "cargo test --doc"
cargo test --workspace --doc --all-features --locked 2>&1 | tee -a "$TEST_LOG"

# The compose stack's files, checked without Docker by the real tools (built from their
# Go modules at the versions compose pins, cached; a cold build takes minutes).
step "docker-compose.yml through the compose-go loader, and its mounts, images, memory budget"
scripts/check-compose.sh

step "collector and Prometheus configs (otelcol validate, promtool check config)"
scripts/observability/check-configs.sh

step "Grafana provisioning and dashboards (every PromQL expression through promtool)"
python3 scripts/grafana/gen_dashboards.py --check
python3 scripts/grafana/check_dashboards.py --emit-rules "$CACHE/dashboard-rules.yml"

step "k6 scripts (k6 inspect)"
scripts/k6/check.sh

# The compose configs on the real backends: the collector, Loki, Prometheus (and Tempo when
# TEMPO_BIN names a binary) natively, on the files compose mounts, with the services and k6.
step "stack test: scripts/dev-stack.sh up --observability, then tests/stack (k6, TraceQL, Loki, exemplars, dashboards)"
stack_start=$SECONDS
trap 'scripts/dev-stack.sh down >/dev/null 2>&1 || true; [ "$STARTED_INFRA" = true ] && scripts/infra.sh down || true' EXIT
scripts/dev-stack.sh up --observability
STACK_LOG="$CACHE/stack-test.log"
stack_rc=0
(cd tests/stack && "$OPENMETRICS_PYTHON" -m pytest -v -s -p no:cacheprovider .) 2>&1 | tee "$STACK_LOG" || stack_rc=$?
scripts/dev-stack.sh down
echo "stack test: $((SECONDS - stack_start)) s including startup"
[ "$stack_rc" = 0 ] || { echo "stack test failed (log: $STACK_LOG)" >&2; exit 1; }

if [ "$STARTED_INFRA" = true ]; then
  step "stopping Postgres and Kafka"
  trap - EXIT
  scripts/infra.sh down
fi

# One closing line for every Rust test run above (unit, integration, end-to-end, doc).
results=$(grep -hoE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$TEST_LOG" || true)
passed=$(awk '{ s += $4 } END { print s + 0 }' <<<"$results")
failed=$(awk '{ s += $6 } END { print s + 0 }' <<<"$results")
# pytest's summary line: "== 9 passed, 2 skipped in 95.1s =="
stack_summary=$(grep -E '^=+ .*(passed|failed).* in [0-9.]+s' "$STACK_LOG" | tail -n 1 || true)
passed=$((passed + $(grep -oE '[0-9]+ passed' <<<"$stack_summary" | grep -oE '[0-9]+' || echo 0)))
failed=$((failed + $(grep -oE '[0-9]+ failed' <<<"$stack_summary" | grep -oE '[0-9]+' || echo 0)))
skipped=$(grep -oE '[0-9]+ skipped' <<<"$stack_summary" | grep -oE '[0-9]+' || echo 0)
printf '\ntests: %s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
