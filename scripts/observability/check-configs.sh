#!/usr/bin/env bash
# Validate the observability configs with the real tools, built natively and cached
# (scripts/observability/build-otelcol.sh, build-promtool.sh). Exit 0 when every check passes,
# 1 with a FAIL line per problem otherwise. Cold: builds the tools first (minutes); warm: seconds.
#
#   scripts/observability/check-configs.sh
#
# Checks:
#   1. otelcol validate on observability/otel-collector.yaml with every ${env:...} it references
#      UNSET (the docker compose defaults apply)
#   2. the same with native-style values (127.0.0.1, shifted Tempo port, 100% sampling)
#   3. every component type in the collector config is a canonical name the built collector
#      lists (`otelcol components`), and every component in the builder manifest is used.
#      `otelcol validate` silently accepts deprecated aliases (otlp, otlphttp, spanmetrics, ...).
#   4. promtool check config on observability/prometheus.yml and on its native rewrite
#   5. self-test: broken copies must FAIL (the removed `loki` exporter, a deprecated alias, a
#      typo'd Prometheus key), proving the checks can fail. CHECK_CONFIGS_SELF_TEST=0 skips it.
#   6. loki -verify-config on observability/loki.yaml (Loki built by build-loki.sh); tempo
#      -config.verify on observability/tempo.yaml when TEMPO_BIN names a Tempo 3.0.3 binary
#      (Tempo 3 is not on the Go module proxy, so it is not built here). Both with
#      -config.expand-env=true.
#
# Environment: OTEL_DEMO_CACHE (tool cache), OTELCOL_BIN / PROMTOOL_BIN (use these binaries
# instead of building), TEMPO_BIN, LOKI_BIN, CHECK_CONFIGS_SELF_TEST.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

COLLECTOR_CFG="$ROOT/observability/otel-collector.yaml"
PROM_CFG="$ROOT/observability/prometheus.yml"
TEMPO_CFG="$ROOT/observability/tempo.yaml"
LOKI_CFG="$ROOT/observability/loki.yaml"

OTELCOL="${OTELCOL_BIN:-$("$ROOT/scripts/observability/build-otelcol.sh")}" || obs_die "could not build the collector"
PROMTOOL="${PROMTOOL_BIN:-$("$ROOT/scripts/observability/build-promtool.sh")}" || obs_die "could not build promtool"
LOKI_BIN="${LOKI_BIN:-$("$ROOT/scripts/observability/build-loki.sh")}" || obs_die "could not build Loki"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  [ -s "$2" ] && sed 's/^/      | /' "$2"
  failures=$((failures + 1))
}

# Names of the env vars a collector config references (${env:NAME} / ${env:NAME:-default}).
collector_env_vars() { grep -oE '\$\{env:[A-Za-z_][A-Za-z0-9_]*' "$1" | sed 's/^\${env://' | sort -u; }

# otelcol validate with every referenced variable unset, plus the given NAME=VALUE pairs.
collector_validate() {
  local cfg="$1"
  shift
  local unset_args=()
  local v
  for v in $(collector_env_vars "$cfg"); do unset_args+=(-u "$v"); done
  env "${unset_args[@]}" "$@" "$OTELCOL" validate --config="$cfg"
}

# Component types used in a collector config: "<kind> <type>" for keys under the top-level
# receivers/processors/exporters/connectors/extensions maps (the part of the id before "/").
used_components() {
  awk '
    /^[a-z_]+:/ { section = $1; sub(":", "", section); next }
    section ~ /^(receivers|processors|exporters|connectors|extensions)$/ && /^  [a-z0-9_]+(\/[^:]*)?:/ {
      t = $1; sub(":.*", "", t); sub("/.*", "", t); print section, t
    }' "$1" | sort -u
}
# Component types the built collector contains, canonical names only.
built_components() {
  "$OTELCOL" components | awk '
    /^[a-z_]+:/ { section = $1; sub(":", "", section); next }
    /^    - name: / { print section, $3 }' | sort -u
}

check_components() {
  local cfg="$1" out="$2"
  used_components "$cfg" >"$TMP/used"
  built_components >"$TMP/built"
  local missing unused
  missing="$(comm -23 "$TMP/used" "$TMP/built")"
  unused="$(comm -13 "$TMP/used" "$TMP/built")"
  : >"$out"
  [ -z "$missing" ] || printf 'not a canonical component of the collector (removed, misspelt or a deprecated alias):\n%s\n' "$missing" >>"$out"
  [ -z "$unused" ] || printf 'in observability/otelcol-builder.yaml but unused by the config:\n%s\n' "$unused" >>"$out"
  [ ! -s "$out" ]
}

check_components_stdout() {
  local rc=0
  check_components "$1" "$TMP/components.out" || rc=$?
  cat "$TMP/components.out"
  return "$rc"
}

NATIVE_ENV=(
  OTEL_LISTEN_HOST=127.0.0.1
  OTEL_GRPC_PORT=4317 OTEL_HTTP_PORT=4318 OTEL_HEALTH_PORT=13133 OTEL_SELF_METRICS_PORT=8888
  OTEL_MEMORY_LIMIT_MIB=256
  BACKENDS_HOST=127.0.0.1 TEMPO_OTLP_GRPC_PORT=4417 SERVICES_HOST=127.0.0.1
  TAIL_SAMPLING_DECISION_WAIT=2s TAIL_SAMPLING_LATENCY_MS=500 TAIL_SAMPLING_PERCENT=100
)

# 1 + 2: the collector config, compose defaults and native values.
if collector_validate "$COLLECTOR_CFG" >"$TMP/out" 2>&1; then
  pass "otelcol validate otel-collector.yaml (env unset: compose defaults)"
else
  fail "otelcol validate otel-collector.yaml (env unset: compose defaults)" "$TMP/out"
fi
if collector_validate "$COLLECTOR_CFG" "${NATIVE_ENV[@]}" >"$TMP/out" 2>&1; then
  pass "otelcol validate otel-collector.yaml (native env values)"
else
  fail "otelcol validate otel-collector.yaml (native env values)" "$TMP/out"
fi
# 3: canonical names, manifest == config.
if check_components "$COLLECTOR_CFG" "$TMP/out"; then
  pass "collector components: canonical names, builder manifest lists exactly the used ones"
else
  fail "collector components: canonical names, builder manifest lists exactly the used ones" "$TMP/out"
fi

# 4: Prometheus, compose targets and the native rewrite.
if "$PROMTOOL" check config "$PROM_CFG" >"$TMP/out" 2>&1; then
  pass "promtool check config prometheus.yml"
else
  fail "promtool check config prometheus.yml" "$TMP/out"
fi
if "$ROOT/scripts/observability/prometheus-native-config.sh" "$TMP/prometheus-native.yml" >"$TMP/out" 2>&1 &&
  "$PROMTOOL" check config "$TMP/prometheus-native.yml" >>"$TMP/out" 2>&1; then
  pass "promtool check config on the native rewrite (prometheus-native-config.sh)"
else
  fail "promtool check config on the native rewrite (prometheus-native-config.sh)" "$TMP/out"
fi

# 5: self-test, each broken copy must be rejected, and for the expected reason (PATTERN).
expect_failure() {
  local what="$1" pattern="$2"
  shift 2
  if "$@" >"$TMP/out" 2>&1; then
    fail "self-test: $what was NOT rejected" "$TMP/out"
  elif ! grep -qE "$pattern" "$TMP/out"; then
    fail "self-test: $what was rejected, but not with /$pattern/" "$TMP/out"
  else
    pass "self-test: $what is rejected: $(grep -m1 -oE "$pattern" "$TMP/out")"
  fi
}
if [ "${CHECK_CONFIGS_SELF_TEST:-1}" != 0 ]; then
  sed 's#otlp_http/loki#loki#g' "$COLLECTOR_CFG" >"$TMP/removed-loki-exporter.yaml"
  expect_failure "collector config using the removed 'loki' exporter" \
    "'exporters' unknown type: \"loki\"[^(]*" \
    collector_validate "$TMP/removed-loki-exporter.yaml"
  sed 's#otlp_grpc/tempo#otlp/tempo#g' "$COLLECTOR_CFG" >"$TMP/deprecated-otlp-alias.yaml"
  expect_failure "collector config using the deprecated 'otlp' alias (otelcol validate accepts it)" \
    "^exporters otlp$" \
    check_components_stdout "$TMP/deprecated-otlp-alias.yaml"
  sed 's#^  scrape_interval:#  scrape_intervall:#' "$PROM_CFG" >"$TMP/typo.yml"
  expect_failure "prometheus.yml with a typo'd key (scrape_intervall)" \
    "field scrape_intervall not found[^\"]*" \
    "$PROMTOOL" check config "$TMP/typo.yml"
fi

# 6: Tempo and Loki, when their binaries are provided.
if [ -n "${TEMPO_BIN:-}" ]; then
  if (cd "$TMP" && TEMPO_DATA_DIR="$TMP/tempo" "$TEMPO_BIN" -config.file="$TEMPO_CFG" -config.expand-env=true -config.verify=true) >"$TMP/out" 2>&1; then
    pass "tempo -config.verify tempo.yaml"
  else
    fail "tempo -config.verify tempo.yaml" "$TMP/out"
  fi
else
  printf 'SKIP  tempo.yaml (Tempo 3.0.3 is not on the Go module proxy; set TEMPO_BIN to a binary to verify it)\n'
fi
if [ -n "${LOKI_BIN:-}" ]; then
  if (cd "$TMP" && LOKI_DATA_DIR="$TMP/loki" "$LOKI_BIN" -config.file="$LOKI_CFG" -config.expand-env=true -verify-config=true) >"$TMP/out" 2>&1; then
    pass "loki -verify-config loki.yaml"
  else
    fail "loki -verify-config loki.yaml" "$TMP/out"
  fi
else
  printf 'SKIP  loki.yaml (set LOKI_BIN to a Loki 3.7.6 binary to verify it)\n'
fi

if [ "$failures" -gt 0 ]; then
  printf '\ncheck-configs: %d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\ncheck-configs: all checks passed\n'
