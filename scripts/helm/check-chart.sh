#!/usr/bin/env bash
# The Helm chart deploy/helm/otel-demo, checked without a cluster, with Helm built from its Go
# module (build-helm.sh) and the native collector (build-otelcol.sh). Exit 0 when all pass.
#
#   scripts/helm/check-chart.sh            check
#   scripts/helm/check-chart.sh --update   rewrite tests/helm/golden/ from the renders (review the diff)
#
# 1. helm lint --strict (values.schema.json included)
# 2. helm template for the default values and each deploy/helm/otel-demo/ci/*-values.yaml; Helm
#    may say nothing on stderr but that it follows the chart's two symlinks into the repository
# 3. the schema and the chart's own guards reject bad values (a `latest` tag, an unknown key,
#    autoscaling with the static resolver), so a render cannot pass by accepting anything
# 4. check_chart.py on the renders: mounted files verbatim, golden files, Kubernetes schemas
#    (strict), policy, `otelcol validate` of both collector tiers
# 5. self-tests: check_chart.py and check_policy.py each catch planted faults
#
# Environment: PYTHON (an interpreter with PyYAML and kubernetes-validate; scripts/test.sh passes
# its venv), HELM_BIN / OTELCOL_BIN (use these binaries instead of building), OTEL_DEMO_CACHE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART="$ROOT/deploy/helm/otel-demo"
GOLDEN="$ROOT/tests/helm/golden"
PYTHON="${PYTHON:-python3}"
UPDATE=()
case "${1:-}" in
  "") ;;
  --update) UPDATE=(--update) ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

HELM="${HELM_BIN:-$("$ROOT/scripts/helm/build-helm.sh")}"
OTELCOL="${OTELCOL_BIN:-$("$ROOT/scripts/observability/build-otelcol.sh")}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  [ -s "${2:-/dev/null}" ] && sed 's/^/      | /' "$2"
  failures=$((failures + 1))
}

# Helm's only expected words on stderr: the two symlinks it follows (files/observability,
# files/grafana). Anything else (a deprecation, a warning) fails the render.
helm_quiet() {
  "$HELM" "$@" 2>"$TMP/stderr" >"$TMP/stdout" || { cat "$TMP/stderr" "$TMP/stdout" >"$TMP/out"; return 1; }
  grep -vE "^walk\.go:[0-9]+: found symbolic link in path: $CHART/files/(observability|grafana) resolves to $ROOT/(observability|grafana)\. Contents of linked file included and used$" \
    "$TMP/stderr" >"$TMP/out" && return 1
  return 0
}

if helm_quiet lint --strict "$CHART" && cat "$TMP/stdout" >"$TMP/out" && grep -q '1 chart(s) linted, 0 chart(s) failed' "$TMP/out"; then
  pass "helm lint --strict"
else
  fail "helm lint --strict" "$TMP/out"
fi

mkdir -p "$TMP/renders"
render() { # NAME [helm template args]
  local name="$1"
  shift
  if helm_quiet template otel-demo "$CHART" --namespace otel-demo "$@"; then
    mv "$TMP/stdout" "$TMP/renders/$name.yaml"
    pass "helm template: $name"
  else
    fail "helm template: $name" "$TMP/out"
  fi
}
render default
for values in "$CHART"/ci/*-values.yaml; do
  name="$(basename "$values" -values.yaml)"
  render "$name" --values "$values"
done

# Bad values must be refused, each for its own reason.
refused() { # WHAT PATTERN [helm template args]
  local what="$1" pattern="$2"
  shift 2
  if "$HELM" template otel-demo "$CHART" "$@" >"$TMP/out" 2>&1; then
    fail "refused: $what (it rendered)" "$TMP/out"
  elif grep -qE "$pattern" "$TMP/out"; then
    pass "refused: $what: $(grep -m1 -oE "$pattern" "$TMP/out")"
  else
    fail "refused: $what, but not with /$pattern/" "$TMP/out"
  fi
}
refused "an unpinned image" "/images/tempo/tag': 'not' failed" --set images.tempo.tag=latest
refused "an unknown key" "additional properties 'replica' not allowed" --set gateway.replica=3
refused "a container without a memory limit" "missing property 'memory'" --set services.service-a.resources.limits.memory=null
refused "autoscaled gateways behind the static resolver" "needs agent.loadBalancing.resolver k8s" \
  --set gateway.autoscaling.enabled=true

cd "$ROOT/scripts/helm"
if "$PYTHON" check_chart.py "$TMP/renders" --golden "$GOLDEN" --otelcol "$OTELCOL" "${UPDATE[@]}" >"$TMP/out" 2>&1; then
  sed -n '/^PASS/p' "$TMP/out"
else
  grep -E '^(PASS|FAIL|      )' "$TMP/out" || cat "$TMP/out"
  failures=$((failures + 1))
fi
if "$PYTHON" check_chart.py "$TMP/renders" --golden "$GOLDEN" --otelcol "$OTELCOL" --self-test >"$TMP/out" 2>&1; then
  pass "self-test: an edited mounted file, an unknown manifest field, a broken agent config are each caught"
else
  fail "self-test of check_chart.py" "$TMP/out"
fi
if "$PYTHON" check_policy.py --self-test "$TMP/renders/default.yaml" >"$TMP/out" 2>&1; then
  pass "policy self-test: every rule catches a planted violation, a justified exemption is honoured"
else
  fail "policy self-test" "$TMP/out"
fi

if [ "$failures" -gt 0 ]; then
  printf '\ncheck-chart: %d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\ncheck-chart: all checks passed\n'
