#!/usr/bin/env bash
# The project's test command; CI runs it through .ci/run.
#
# Installs what it needs by itself (a C toolchain and zlib for librdkafka, a Python venv
# with the OpenMetrics reference parser, PyYAML and pytest, cargo-deny, cargo-machete, Postgres and Kafka
# through scripts/infra.sh, the collector and Prometheus from their Go modules) and caches
# builds and downloads outside the repository, so a fresh clone on a warm machine only
# rebuilds the workspace crates. Postgres and Kafka are stopped again at the end unless
# DATABASE_URL and KAFKA_BROKERS were given (then they are used as they are).
#   OTEL_DEMO_CACHE   cache directory (default: ~/.cache/otel-rust-demo)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PROMETHEUS_CLIENT_VERSION=0.23.1
PYTEST_VERSION=8.4.2
PYYAML_VERSION=6.0.3
KUBERNETES_VALIDATE_VERSION=1.37.0
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
mkdir -p "$CACHE"
started=$SECONDS

step() { printf '\n==> %s (%d s)\n' "$*" "$((SECONDS - started))"; }

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
# validates /metrics output; PyYAML reads the backends' configs; pytest runs the stack test;
# kubernetes-validate checks the Helm chart's manifests against the Kubernetes schemas it bundles.
ensure_python_tools() {
  local venv="$CACHE/python-tools-pc$PROMETHEUS_CLIENT_VERSION-pytest$PYTEST_VERSION-yaml$PYYAML_VERSION-kv$KUBERNETES_VALIDATE_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client, pytest, yaml, kubernetes_validate' 2>/dev/null; then
    step "installing prometheus-client $PROMETHEUS_CLIENT_VERSION, pytest $PYTEST_VERSION, PyYAML $PYYAML_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "pytest==$PYTEST_VERSION" "pyyaml==$PYYAML_VERSION" \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  export OPENMETRICS_PYTHON="$venv/bin/python"
}

# cargo-deny from crates.io at a pinned version, built once. Its release profile (fat LTO,
# one codegen unit) takes minutes to compile; an unoptimised build without debug info takes
# a third of that and checks this workspace in about 3 s instead of 2.
CARGO_DENY="$CACHE/tools/cargo-deny-$CARGO_DENY_VERSION/bin/cargo-deny"
build_cargo_deny() {
  [ -x "$CARGO_DENY" ] && return
  CARGO_TARGET_DIR="$CACHE/tools/cargo-deny-build" CARGO_PROFILE_DEV_DEBUG=false \
    cargo install --quiet --locked --debug --version "$CARGO_DENY_VERSION" \
    --root "$CACHE/tools/cargo-deny-$CARGO_DENY_VERSION" cargo-deny
  rm -rf "$CACHE/tools/cargo-deny-build"
}

# cargo-machete (MIT) at a pinned version, built once and the same way: it only searches
# the sources for each dependency's name, so an unoptimised build checks in seconds.
CARGO_MACHETE="$CACHE/tools/cargo-machete-$CARGO_MACHETE_VERSION/bin/cargo-machete"
build_cargo_machete() {
  [ -x "$CARGO_MACHETE" ] && return
  CARGO_TARGET_DIR="$CACHE/tools/cargo-machete-build" CARGO_PROFILE_DEV_DEBUG=false \
    cargo install --quiet --locked --debug --version "$CARGO_MACHETE_VERSION" \
    --root "$CACHE/tools/cargo-machete-$CARGO_MACHETE_VERSION" cargo-machete
  rm -rf "$CACHE/tools/cargo-machete-build"
}

# The tools (the collector, Prometheus, promtool, Alertmanager and Helm from their Go modules, the collector
# builder that check-configs.sh regenerates tools/otelcol with, cargo-deny, cargo-machete) build in the
# background while cargo compiles the workspace: each alone leaves a core idle in its serial
# phases (linking, single-crate tails). Cached, so a warm run finds them at once. A new
# process group, so the whole build stops with this script.
TOOLS_LOG="$CACHE/tools-build.log"
start_tool_builds() {
  # cargo-deny first: its last crate compiles on one core, which the Go builds then fill.
  setsid bash -c 'set -e
    build_cargo_deny
    build_cargo_machete
    scripts/observability/build-otelcol.sh >/dev/null
    scripts/observability/build-prometheus.sh >/dev/null
    scripts/observability/build-promtool.sh >/dev/null
    scripts/observability/build-alertmanager.sh >/dev/null
    scripts/helm/build-helm.sh >/dev/null
    generated=$(mktemp -d)
    scripts/observability/generate-otelcol.sh "$generated" >/dev/null
    rm -rf "$generated"' >"$TOOLS_LOG" 2>&1 &
  TOOLS_PID=$!
}
wait_for_tools() {
  [ -n "${TOOLS_PID:-}" ] || return 0
  if ! wait "$TOOLS_PID"; then
    tail -n 40 "$TOOLS_LOG" >&2
    echo "building the tools failed (log: $TOOLS_LOG)" >&2
    exit 1
  fi
  TOOLS_PID=""
}
STARTED_INFRA=false
cleanup() {
  [ -z "${TOOLS_PID:-}" ] || kill -- -"$TOOLS_PID" 2>/dev/null || true
  [ "$STARTED_INFRA" = false ] || scripts/infra.sh down || true
  stop_private_infra
}
# The reliability scenarios (crates/e2e/tests/reliability.rs) stop and pause a Postgres and
# a Kafka of their own, started by the tests in this state directory (e2e::PrivateInfra).
stop_private_infra() {
  if [ -d /tmp/otel-rust-demo-reliability ]; then
    OTEL_DEMO_STATE=/tmp/otel-rust-demo-reliability scripts/infra.sh down >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
ensure_system_packages
ensure_python_tools
export -f build_cargo_deny build_cargo_machete
export CACHE CARGO_DENY_VERSION CARGO_DENY CARGO_MACHETE_VERSION CARGO_MACHETE
step "building the tools in the background (cached; log: $TOOLS_LOG)"
start_tool_builds

step "repository rules: no AGPL tool built, checksums on, no busybox, no registry hosts (scripts/check-policy.sh)"
scripts/check-policy.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# The end-to-end tests run the real binaries against real Postgres and Kafka. With the
# features the tests use, so that `cargo test` below reuses every dependency built here
# (scripts/dev-stack.sh builds the same way).
step "building the service binaries"
cargo build --workspace --bins --all-features --locked

step "starting Postgres and Kafka (scripts/infra.sh)"
if [ -z "${DATABASE_URL:-}" ] || [ -z "${KAFKA_BROKERS:-}" ]; then
  STARTED_INFRA=true
  eval "$(scripts/infra.sh up)"
  export DATABASE_URL KAFKA_BROKERS
fi

# --all-targets also runs the criterion benchmarks once each in test mode, so a broken
# benchmark fails here; the figures come from `cargo bench` (docs/BENCHMARKS.md).
step "cargo test (unit, integration, end to end, benchmark smoke)"
TEST_LOG="$CACHE/cargo-test.log"
cargo test --workspace --all-targets --all-features --locked 2>&1 | tee "$TEST_LOG"

step "cargo test --doc"
cargo test --workspace --doc --all-features --locked 2>&1 | tee -a "$TEST_LOG"
stop_private_infra

step "waiting for the tool builds (cold: minutes; log: $TOOLS_LOG)"
wait_for_tools

# Licences, bans (one version of each OpenTelemetry crate: two would be two globals and
# propagation would silently stop) and sources; advisories need a network database.
step "cargo deny check licenses bans sources (deny.toml)"
"$CARGO_DENY" --locked check licenses bans sources

# A dependency that no source file names is compile time and supply chain for nothing.
# A false positive is listed in its crate's [package.metadata.cargo-machete] with why.
step "cargo machete: no unused dependencies"
"$CARGO_MACHETE"

# The compose stack's files, checked without Docker by the real tools (built from their
# Go modules at the versions compose pins, cached; a cold build takes minutes).
step "docker-compose.yml through the compose-go loader, and its mounts, images, memory budget, Grafana"
# The checker's own tests first: each rule must reject a broken service (go test, cached).
(cd tools/compose-check && GOFLAGS=-mod=readonly go test ./...)
scripts/check-compose.sh

step "collector and Prometheus configs (otelcol validate, promtool check config)"
PYTHON="$OPENMETRICS_PYTHON" scripts/observability/check-configs.sh

# No cluster: Helm (from its Go module) lints and renders, the rest checks the renders.
step "Helm chart: lint --strict, render matrix vs golden files, Kubernetes schemas (strict), policy, otelcol validate of both tiers"
PYTHON="$OPENMETRICS_PYTHON" scripts/helm/check-chart.sh

step "Prometheus rules (generated, valid, every alert unit-tested) and the Alertmanager config"
"$OPENMETRICS_PYTHON" scripts/observability/test_rules.py \
  --promtool "$(scripts/observability/build-promtool.sh)"
"$(dirname "$(scripts/observability/build-alertmanager.sh)")/amtool" check-config observability/alertmanager.yml

step "Loki and Tempo configs, statically (both are AGPL: never built here)"
"$OPENMETRICS_PYTHON" scripts/observability/check_backend_configs.py

step "Grafana provisioning and dashboards (every PromQL expression through promtool)"
python3 scripts/grafana/gen_dashboards.py --check
"$OPENMETRICS_PYTHON" scripts/grafana/check_dashboards.py --emit-rules "$CACHE/dashboard-rules.yml"

step "k6 scripts, parsed with acorn and checked against the services (k6 itself is AGPL: not run)"
scripts/k6/check.sh

step "documents: links, repository paths and README's variables exist (scripts/docs/check_docs.py)"
"$OPENMETRICS_PYTHON" scripts/docs/check_docs.py --self-test
"$OPENMETRICS_PYTHON" scripts/docs/check_docs.py

# The compose configs on the real collector and Prometheus, natively, on the files compose
# mounts, with the services, Postgres, Kafka and otlp-sink where Tempo and Loki receive;
# traffic from crates/load.
step "stack test: scripts/dev-stack.sh up --observability, then tests/stack (alerts, load tool, traces, logs, exemplars, dashboards)"
stack_start=$SECONDS
STACK_LOG="$CACHE/stack-test.log"
stack_rc=0
PYTHON="$OPENMETRICS_PYTHON" scripts/stack-test.sh native || stack_rc=$?
echo "stack test: $((SECONDS - stack_start)) s including startup"
[ "$stack_rc" = 0 ] || { echo "stack test failed (log: $STACK_LOG)" >&2; exit 1; }

# The benchmark script, reduced to seconds, so it cannot rot; it reports figures and
# asserts on none (its own Postgres, Kafka and state dir; stops all it started).
step "scripts/bench.sh --quick (figures not meaningful: it only has to run)"
scripts/bench.sh --quick

if [ "$STARTED_INFRA" = true ]; then
  step "stopping Postgres and Kafka"
  STARTED_INFRA=false
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
printf '\ntests: %s passed, %s failed, %s skipped (%d s)\n' "$passed" "$failed" "$skipped" "$((SECONDS - started))"
