#!/usr/bin/env bash
# promtool from Prometheus v3.14.0: see build-prometheus.sh (PROMTOOL_FORCE=1 rebuilds).
#
#   PROMTOOL="$(scripts/observability/build-promtool.sh)"
#   "$PROMTOOL" check config observability/prometheus.yml
set -euo pipefail
PROMETHEUS_FORCE="${PROMTOOL_FORCE:-${PROMETHEUS_FORCE:-0}}" \
  exec "$(dirname "${BASH_SOURCE[0]}")/build-prometheus.sh" promtool
