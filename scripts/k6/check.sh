#!/usr/bin/env bash
# Static check of the k6 scripts, no stack needed: `k6 inspect` parses each script, runs its
# init code (imports, options, threshold expressions) and prints the consolidated options;
# `--execution-requirements` also validates the scenarios. Exits non-zero on the first error.
#
#   scripts/k6/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

k6="$(K6_PATH_ONLY=1 scripts/k6/k6.sh)"
status=0
for script in scripts/k6/smoke.js scripts/k6/load.js scripts/k6/chaos.js; do
  if out="$("$k6" inspect --execution-requirements "$script" 2>&1)"; then
    scenarios="$(printf '%s' "$out" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(" ".join(sorted(o.get("scenarios", {}))), "| thresholds:", len(o.get("thresholds", {})), "| max VUs:", o.get("maxVUs", "?"), "| max duration:", o.get("totalDuration", "?"))' 2>/dev/null || echo "(inspected)")"
    echo "ok    $script: $scenarios"
  else
    echo "FAIL  $script"
    printf '%s\n' "$out" | sed 's/^/      /'
    status=1
  fi
done
exit $status
