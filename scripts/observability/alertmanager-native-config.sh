#!/usr/bin/env bash
# Write a copy of observability/alertmanager.yml for a native (no Docker) run: the webhook's
# compose host name (alert-webhook) becomes one host (default 127.0.0.1); the port stays.
# Alertmanager's config has no env substitution, hence this rewrite instead of variables.
#
#   scripts/observability/alertmanager-native-config.sh OUT_FILE [HOST]
set -euo pipefail

[ $# -ge 1 ] || {
  echo "usage: $0 OUT_FILE [HOST]" >&2
  exit 2
}
OUT="$1"
HOST="${2:-127.0.0.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/observability/alertmanager.yml"

mkdir -p "$(dirname "$OUT")"
sed -E "s#(url: http://)alert-webhook:#\1$HOST:#" "$SRC" >"$OUT.tmp"
if grep -n "alert-webhook:" "$OUT.tmp" >&2; then
  rm -f "$OUT.tmp"
  echo "alertmanager-native-config: a compose host name is left (see above)" >&2
  exit 1
fi
mv "$OUT.tmp" "$OUT"
