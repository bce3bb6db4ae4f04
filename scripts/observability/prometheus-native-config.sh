#!/usr/bin/env bash
# Write a copy of observability/prometheus.yml for a native (no Docker) run: the compose host
# names of the scrape targets are replaced by one host (default 127.0.0.1); ports stay as they are.
# Prometheus config has no env substitution, hence this rewrite instead of variables.
#
#   scripts/observability/prometheus-native-config.sh OUT_FILE [HOST]
#   RULES_DIR=DIR scripts/observability/prometheus-native-config.sh OUT_FILE   rules from DIR
#     (default observability/rules; the stack test passes a time-scaled copy from gen_rules.py)
#   prometheus --config.file=OUT_FILE --web.enable-otlp-receiver \
#     --web.enable-remote-write-receiver --enable-feature=exemplar-storage ...
#
# Only `targets: [name:port]` entries whose host is one of the compose service names below are
# touched; anything else (e.g. localhost:9090) is copied unchanged.
set -euo pipefail

[ $# -ge 1 ] || {
  echo "usage: $0 OUT_FILE [HOST]" >&2
  exit 2
}
OUT="$1"
HOST="${2:-127.0.0.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/observability/prometheus.yml"
HOSTS='api-gateway|service-a|service-b|service-c|service-d|otel-collector|tempo|loki|prometheus|alertmanager'
# The copy lives elsewhere, so the rule files' path (relative to the config) becomes absolute.
RULES_DIR="$(cd "${RULES_DIR:-$ROOT/observability/rules}" && pwd)"

mkdir -p "$(dirname "$OUT")"
sed -E -e "s#(targets: \[[^]]*)\b($HOSTS):([0-9]+)#\1$HOST:\3#g" \
  -e "s#^(  - )rules/#\1$RULES_DIR/#" "$SRC" >"$OUT.tmp"
# One target per list in our file, so a single substitution per line is enough; verify that no
# compose host name is left in a target.
if grep -En "targets: \[.*\b($HOSTS):[0-9]+" "$OUT.tmp" >&2; then
  rm -f "$OUT.tmp"
  echo "prometheus-native-config: compose host names left in targets (see above)" >&2
  exit 1
fi
mv "$OUT.tmp" "$OUT"
