#!/usr/bin/env bash
# Validate the observability configs with the real tools, built natively and cached
# (scripts/observability/build-otelcol.sh, build-promtool.sh), and check that the committed
# collector module tools/otelcol/ is what observability/otelcol-builder.yaml generates. Exit 0 when
# every check passes, 1 with a FAIL line per problem otherwise. Cold: builds the tools first
# (minutes); warm: seconds.
#
#   scripts/observability/check-configs.sh
#
# Checks:
#   1. otelcol validate on observability/otel-collector.yaml with every ${env:...} it references
#      UNSET (the docker compose defaults apply)
#   2. the same with native-style values (127.0.0.1, shifted Tempo port, 100% sampling), and
#      the compose overlay observability/otel-collector.service-graph.yaml merged on top: its
#      lists must be the base lists plus service_graph (lists replace on merge), and the merged
#      wiring validates with a span_metrics connector standing in for service_graph, which the
#      native build cannot contain (service_graph_overlay.py)
#   3. every component type in the collector config is a canonical name the built collector
#      lists (`otelcol components`), and every component in the builder manifest is used.
#      `otelcol validate` silently accepts deprecated aliases (otlp, otlphttp, spanmetrics, ...).
#   4. tools/otelcol matches the manifest, statically (instant): every manifest module is
#      required at its version and imported, nothing else is imported, the dist version is the
#      one in main.go, and every collector module in go.mod and tools/ocb is at the manifest's
#      release. Then exactly: generate-otelcol.sh regenerates the module into a temporary
#      directory and it must equal tools/otelcol (about 2 s warm; cold, ocb's own build adds
#      about a minute). The static check names the mismatch; the regeneration catches the rest.
#   5. promtool check config on observability/prometheus.yml and on its native rewrite
#   6. self-test: broken copies must FAIL (the removed `loki` exporter, a deprecated alias, a
#      manifest or module out of step, a typo'd Prometheus key), proving the checks can fail.
#      CHECK_CONFIGS_SELF_TEST=0 skips it.
# Loki and Tempo (AGPL) are never built here; their configs are checked statically elsewhere.
#
# Environment: OTEL_DEMO_CACHE (tool cache), OTELCOL_BIN / PROMTOOL_BIN (use these binaries
# instead of building), PYTHON (an interpreter with PyYAML; scripts/test.sh passes its venv),
# CHECK_CONFIGS_SELF_TEST.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

COLLECTOR_CFG="$ROOT/observability/otel-collector.yaml"
SERVICE_GRAPH_CFG="$ROOT/observability/otel-collector.service-graph.yaml"
PYTHON="${PYTHON:-python3}"
PROM_CFG="$ROOT/observability/prometheus.yml"
MANIFEST="$ROOT/observability/otelcol-builder.yaml"
OTELCOL_MOD="$ROOT/tools/otelcol"

OTELCOL="${OTELCOL_BIN:-$("$ROOT/scripts/observability/build-otelcol.sh")}" || obs_die "could not build the collector"
PROMTOOL="${PROMTOOL_BIN:-$("$ROOT/scripts/observability/build-promtool.sh")}" || obs_die "could not build promtool"

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

# otelcol validate with every referenced variable unset, plus the given NAME=VALUE pairs;
# EXTRA_CONFIG, when set, is merged on top (a second --config, as compose does).
collector_validate() {
  local cfg="$1"
  shift
  local unset_args=() configs=(--config="$cfg")
  local v
  for v in $(collector_env_vars "$cfg"); do unset_args+=(-u "$v"); done
  [ -z "${EXTRA_CONFIG:-}" ] || configs+=(--config="$EXTRA_CONFIG")
  env "${unset_args[@]}" "$@" "$OTELCOL" validate "${configs[@]}"
}

# The compose overlay: its lists, then the merged wiring with the stand-in connector.
check_service_graph_overlay() {
  local overlay="$1"
  "$PYTHON" "$ROOT/scripts/observability/service_graph_overlay.py" \
    "$COLLECTOR_CFG" "$overlay" --stand-in "$TMP/stand-in.yaml" &&
    EXTRA_CONFIG="$TMP/stand-in.yaml" collector_validate "$COLLECTOR_CFG"
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

# The generated module (DIR: go.mod, main.go, components.go) against a manifest; problems on stdout.
# The manifest uses no `import:` keys, so each component is imported by its module path.
check_otelcol_module() {
  local manifest="$1" dir="$2" ocb_mod="$3"
  local mods versions imported m v
  mods="$(sed -n 's/^[[:space:]]*- gomod: \([^ ]*\) \([^ ]*\)[[:space:]]*$/\1 \2/p' "$manifest" | sort -u)"
  versions="$(printf '%s\n' "$mods" | cut -d' ' -f2 | sort -u)"
  while read -r m v; do
    grep -qxF "$(printf '\t%s %s' "$m" "$v")" "$dir/go.mod" || echo "manifest module $m $v is not required at that version in go.mod"
  done <<<"$mods"
  # Aliased imports are ocb's component and provider imports (the framework's are unaliased).
  imported="$(sed -n 's/^[[:space:]]*[a-z0-9_]\{1,\} "\([^"]*\)"$/\1/p' "$dir/components.go" "$dir/main.go" |
    grep -vxF go.opentelemetry.io/collector/service/telemetry/otelconftelemetry | sort -u)"
  comm -3 <(printf '%s\n' "$mods" | cut -d' ' -f1 | sort -u) <(printf '%s\n' "$imported") |
    sed 's/^\t\(.*\)/imported in the module but not in the manifest: \1/; /^imported/!s/^/in the manifest but not imported: /'
  v="$(sed -n 's/^[[:space:]]*version:[[:space:]]*\([^ ]*\)[[:space:]]*$/\1/p' "$manifest" | head -1)"
  grep -q "Version:[[:space:]]*\"$v\"," "$dir/main.go" || echo "dist version $v is not the Version in main.go"
  # One release: every collector module in the graph, and ocb, at a version the manifest uses.
  { grep -E '^[[:space:]]+(go\.opentelemetry\.io/collector|github\.com/open-telemetry/opentelemetry-collector-contrib)/' "$dir/go.mod"
    grep -E '^[[:space:]]*(require[[:space:]]+)?go\.opentelemetry\.io/collector/cmd/builder ' "$ocb_mod"
  } | sed 's/^[[:space:]]*require[[:space:]]*//' | while read -r m v _; do
    # A pattern match, not `printf | grep -q`: grep quitting early fails the printf under pipefail.
    case " ${versions//$'\n'/ } " in
      *" $v "*) ;;
      *) echo "$m $v is not at the manifest's release (${versions//$'\n'/ })" ;;
    esac
  done
}

check_otelcol_module_stdout() {
  local out
  out="$(check_otelcol_module "$@")"
  [ -z "$out" ] || { printf '%s\n' "$out"; return 1; }
}

# The exact check: regenerate with ocb into a temporary directory and compare with DIR.
check_otelcol_regenerated() {
  "$ROOT/scripts/observability/generate-otelcol.sh" "$TMP/regenerated" >/dev/null || return 1
  diff -r -U2 "$1" "$TMP/regenerated" ||
    { echo "tools/otelcol differs from what the manifest generates: run scripts/observability/generate-otelcol.sh"; return 1; }
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
"$PYTHON" -c 'import yaml' 2>/dev/null || obs_die "$PYTHON has no PyYAML (set PYTHON to an interpreter with it)"
if check_service_graph_overlay "$SERVICE_GRAPH_CFG" >"$TMP/out" 2>&1; then
  pass "compose overlay otel-collector.service-graph.yaml: base lists + service_graph, merged wiring validates (stand-in)"
else
  fail "compose overlay otel-collector.service-graph.yaml: base lists + service_graph, merged wiring validates (stand-in)" "$TMP/out"
fi
# 3: canonical names, manifest == config.
if check_components "$COLLECTOR_CFG" "$TMP/out"; then
  pass "collector components: canonical names, builder manifest lists exactly the used ones"
else
  fail "collector components: canonical names, builder manifest lists exactly the used ones" "$TMP/out"
fi

# 4: the committed collector module matches the manifest.
if check_otelcol_module_stdout "$MANIFEST" "$OTELCOL_MOD" "$ROOT/tools/ocb/go.mod" >"$TMP/out"; then
  pass "tools/otelcol matches otelcol-builder.yaml (modules, versions, imports, one release)"
else
  fail "tools/otelcol matches otelcol-builder.yaml (modules, versions, imports, one release)" "$TMP/out"
fi
if check_otelcol_regenerated "$OTELCOL_MOD" >"$TMP/out" 2>&1; then
  pass "tools/otelcol is exactly what generate-otelcol.sh makes of the manifest"
else
  fail "tools/otelcol is exactly what generate-otelcol.sh makes of the manifest" "$TMP/out"
fi

# 5: Prometheus, compose targets and the native rewrite.
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

# 6: self-test, each broken copy must be rejected, and for the expected reason (PATTERN).
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
  sed 's#^\(  - gomod: go.opentelemetry.io/collector/exporter/otlpexporter \(.*\)\)$#\1\n  - gomod: go.opentelemetry.io/collector/exporter/debugexporter \2#' "$MANIFEST" >"$TMP/added-component.yaml"
  expect_failure "builder manifest with a component tools/otelcol was not regenerated for" \
    "in the manifest but not imported: go.opentelemetry.io/collector/exporter/debugexporter" \
    check_otelcol_module_stdout "$TMP/added-component.yaml" "$OTELCOL_MOD" "$ROOT/tools/ocb/go.mod"
  mkdir -p "$TMP/stale-module" && cp "$OTELCOL_MOD"/go.mod "$OTELCOL_MOD"/*.go "$TMP/stale-module/"
  sed -i -E 's#^(\s+go\.opentelemetry\.io/collector/otelcol) v[0-9.]+#\1 v0.1.0#' "$TMP/stale-module/go.mod"
  expect_failure "tools/otelcol with a collector module at another release" \
    "go.opentelemetry.io/collector/otelcol v0.1.0 is not at the manifest's release" \
    check_otelcol_module_stdout "$MANIFEST" "$TMP/stale-module" "$ROOT/tools/ocb/go.mod"
  expect_failure "the same module against a fresh regeneration" \
    "tools/otelcol differs from what the manifest generates" \
    check_otelcol_regenerated "$TMP/stale-module"
  sed 's#^  scrape_interval:#  scrape_intervall:#' "$PROM_CFG" >"$TMP/typo.yml"
  sed 's#exporters: \[span_metrics, forward, service_graph\]#exporters: [span_metrics, service_graph]#' \
    "$SERVICE_GRAPH_CFG" >"$TMP/overlay-drops-forward.yaml"
  expect_failure "compose overlay whose list would replace away the forward connector" \
    "must be the base list plus service_graph" \
    check_service_graph_overlay "$TMP/overlay-drops-forward.yaml"
  expect_failure "prometheus.yml with a typo'd key (scrape_intervall)" \
    "field scrape_intervall not found[^\"]*" \
    "$PROMTOOL" check config "$TMP/typo.yml"
fi

if [ "$failures" -gt 0 ]; then
  printf '\ncheck-configs: %d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\ncheck-configs: all checks passed\n'
