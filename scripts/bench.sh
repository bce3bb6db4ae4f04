#!/usr/bin/env bash
# What telemetry costs: the native stack (scripts/dev-stack.sh, release build) driven by
# crates/bench-driver, figures written into docs/BENCHMARKS.md (the section between the
# `bench.sh` markers; the other sections stay as they are).
#
#   scripts/bench.sh            the whole run, about 15 minutes; rewrites docs/BENCHMARKS.md
#   scripts/bench.sh --quick    a few seconds per mode, a reduced matrix, the debug build;
#                               writes $OTEL_DEMO_STATE/BENCHMARKS-quick.md (scripts/test.sh
#                               runs it so the script cannot rot; the figures mean nothing)
#
# What it measures (docs/BENCHMARKS.md explains each figure):
#   1. the overhead matrix: GET /api/products and POST /api/orders, closed loop (saturation)
#      and open loop (a fixed arrival rate), in five telemetry modes, the modes alternating
#      round after round; every service restarted with the mode's environment
#   2. the gateway hop (gateway vs service-a and service-d called directly)
#   3. the criterion server-span bench (cargo bench -p telemetry --bench server_layer)
#   4. footprint: RSS per service idle and under load, release binary sizes
#   5. trace freshness: response -> last span of its trace at an OTLP receiver
#   6. the collector's capacity on observability/otel-collector.yaml (generated OTLP spans)
#   7. the whole stack's capacity: highest steady POST /api/orders rate with p99 < 100 ms
#
# Environment (defaults in brackets):
#   OTEL_DEMO_STATE    [/tmp/otel-rust-demo-bench] this run's own state: Postgres and Kafka
#                      start there on their own ports, so a stack in the default state dir
#                      (or the one scripts/test.sh started) is left alone
#   POSTGRES_PORT [5442], KAFKA_PORT [9102], KAFKA_CONTROLLER_PORT [9203]
#   BENCH_ROUNDS [3], BENCH_SECONDS [4]: rounds of the matrix, measured seconds per cell
#   BENCH_OUT          [docs/BENCHMARKS.md]
# The service ports (8080-8084, 8090) and the backends' (4317/4318, 9090...) are fixed by
# dev-stack.sh: a running dev stack must be stopped first (dev-stack refuses otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export OTEL_DEMO_STATE="${OTEL_DEMO_STATE:-/tmp/otel-rust-demo-bench}"
export POSTGRES_PORT="${POSTGRES_PORT:-5442}" KAFKA_PORT="${KAFKA_PORT:-9102}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9203}"
STATE="$OTEL_DEMO_STATE"
RESULTS="$STATE/bench-results.jsonl"
if [ "$QUICK" = 1 ]; then
  # The debug build scripts/test.sh has just made: nothing to compile.
  export CARGO_PROFILE="${CARGO_PROFILE:-dev}"
  ROUNDS=1 SECONDS_PER_RUN=1.5 WARMUP=0.5
  OUT="$STATE/BENCHMARKS-quick.md"
else
  export CARGO_PROFILE="${CARGO_PROFILE:-release}"
  ROUNDS="${BENCH_ROUNDS:-3}" SECONDS_PER_RUN="${BENCH_SECONDS:-4}" WARMUP=1.5
  OUT="${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}"
fi
if [ "$CARGO_PROFILE" = release ]; then BIN="$CARGO_TARGET_DIR/release"; else BIN="$CARGO_TARGET_DIR/debug"; fi
DRIVER="$BIN/bench-driver"
CLK_TCK=$(getconf CLK_TCK)
# In dev-stack.sh's start order and on its ports.
PORTS=(third-party-stub:8090 service-d:8084 service-b:8082 service-a:8081 service-c:8083 api-gateway:8080)
SERVICES=("${PORTS[@]%%:*}")
GATEWAY=http://127.0.0.1:8080
ORDER='{"customer_id":"bench-customer","items":[{"sku":"sku-espresso","quantity":1}]}'
# service-d's simulated 5 ms of work off, so the read path is the bare stack (tens of µs
# of work per request); the gateway's rate limit (200/s) out of the way. The third-party
# stand-in keeps its 20 ms: the order flow waits on it as on a real fraud check.
BENCH_ENV=(WORK_LATENCY_MS=0 RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=1000000)
# Fixed arrival rates of the open-loop cells: well below saturation on this machine.
PRODUCTS_RATE=500 ORDERS_RATE=50
[ "$QUICK" = 0 ] || PRODUCTS_RATE=100 ORDERS_RATE=20

say() { printf 'bench: %s\n' "$*" >&2; }

mkdir -p "$STATE"
: >"$RESULTS"
STACK_UP=0
cleanup() {
  # Everything this script started: the services, backends, Postgres and Kafka of $STATE.
  [ "$STACK_UP" = 0 ] || scripts/dev-stack.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

pid_of() { tr -dc 0-9 <"$STATE/$1.pid" 2>/dev/null; }
service_pids() {
  local name pids=()
  for name in "${SERVICES[@]}"; do pids+=("$name=$(pid_of "services/$name")"); done
  (IFS=,; echo "${pids[*]}")
}

# record KEY=VALUE... -- JSON: one result line with this run's labels.
record() {
  local labels=() json
  while [ "$1" != -- ]; do labels+=("$1"); shift; done
  shift
  json=$1
  python3 -c 'import json,sys
d=json.loads(sys.argv[1]); d.update(dict(a.split("=",1) for a in sys.argv[2:])); print(json.dumps(d))' \
    "$json" "${labels[@]}" >>"$RESULTS"
}

stop_services() {
  local name pid
  for name in "${SERVICES[@]}"; do
    pid=$(pid_of "services/$name") || continue
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$STATE/services/$name.pid"
  done
}

# mode_env MODE: the environment of the services in MODE, as `env` arguments.
mode_env() {
  # The demo's export settings (docker-compose.yml's x-rust-env); fresh-default has the SDK's.
  local sdk="OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRIC_EXPORT_INTERVAL=15000"
  local otlp="$sdk OTEL_BSP_SCHEDULE_DELAY=200 OTEL_BLRP_SCHEDULE_DELAY=200"
  case "$1" in
    off) echo "OTEL_SDK_DISABLED=true RUST_LOG=off" ;;
    logs) echo "OTEL_SDK_DISABLED=true" ;;
    full) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 $otlp" ;;
    head10) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 $otlp OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1" ;;
    # Nothing listens on 4319: every export is refused, as with a collector that is down.
    dead) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4319 $otlp" ;;
    fresh-default) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4700 $sdk" ;;
    fresh-demo) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4700 $otlp" ;;
  esac
}

# start_mode MODE: the six services restarted with MODE's environment (backends stay up).
# Started here rather than by `dev-stack.sh up`, whose cargo build would rebuild in the
# middle of a run if someone edits a source file meanwhile.
start_mode() {
  local vars entry name port
  stop_services
  read -ra vars <<<"$(mode_env "$1")"
  for entry in "${PORTS[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    (
      cd "$STATE/services"
      env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_SDK_DISABLED "${vars[@]}" "${BENCH_ENV[@]}" \
        PORT="$port" OTEL_SERVICE_NAME="$name" setsid "$BIN/$name" </dev/null >"$name.log" 2>&1 3>&- 4>&- 5>&- &
      echo $! >"$name.pid"
    )
  done
  for entry in "${PORTS[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    for _ in $(seq 1 300); do
      curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" && break
      kill -0 "$(pid_of "services/$name")" 2>/dev/null || { tail -n 20 "$STATE/services/$name.log" >&2; return 1; }
      sleep 0.2
    done
  done
  # Connection pools and lazy setup: one request of each kind before measuring.
  curl -fs -o /dev/null "$GATEWAY/api/products"
  curl -fs -o /dev/null -H 'content-type: application/json' -d "$ORDER" "$GATEWAY/api/orders"
}

# cell LABELS... -- DRIVER-ARGS...: one measured run, recorded with its labels.
cell() {
  local labels=()
  while [ "$1" != -- ]; do labels+=("$1"); shift; done
  shift
  record "${labels[@]}" -- "$("$DRIVER" http --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" \
    --pids "$(service_pids)" --clk-tck "$CLK_TCK" "$@")"
}

matrix_round() {
  local mode=$1 round=$2
  say "round $round, mode $mode ($(cut -d' ' -f1-3 /proc/loadavg))"
  start_mode "$mode"
  record section=idle mode="$mode" -- "$(python3 - "$(service_pids)" <<'EOF'
import json, sys
rss = {}
for entry in sys.argv[1].split(","):
    name, pid = entry.split("=")
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss[name] = int(line.split()[1])
print(json.dumps({"kind": "idle", "rss_kb": rss}))
EOF
)"
  cell section=matrix mode="$mode" round="$round" path=products load=saturation -- \
    --url "$GATEWAY/api/products" --concurrency 16
  cell section=matrix mode="$mode" round="$round" path=orders load=rate -- \
    --url "$GATEWAY/api/orders" --method POST --body "$ORDER" --rate "$ORDERS_RATE"
  [ "$QUICK" = 1 ] && return
  cell section=matrix mode="$mode" round="$round" path=products load=rate -- \
    --url "$GATEWAY/api/products" --rate "$PRODUCTS_RATE"
  cell section=matrix mode="$mode" round="$round" path=orders load=saturation -- \
    --url "$GATEWAY/api/orders" --method POST --body "$ORDER" --concurrency 16
}

started=$SECONDS
say "starting the stack ($CARGO_PROFILE build, state $STATE)"
STACK_UP=1
scripts/dev-stack.sh up --observability >/dev/null 2>"$STATE/bench-up.log" ||
  { cat "$STATE/bench-up.log" >&2; exit 1; }
[ -x "$DRIVER" ] || { echo "bench: $DRIVER missing (dev-stack builds every binary)" >&2; exit 1; }
# What dev-stack.sh gave the services: Postgres, Kafka (already up: this only prints them).
eval "$(scripts/infra.sh up 2>/dev/null)"
export DATABASE_URL KAFKA_BROKERS KAFKA_TOPIC ADMIN_TOKEN="${ADMIN_TOKEN:-dev-admin-token}"

# 1 and 4: the overhead matrix, modes alternating within each round.
if [ "$QUICK" = 1 ]; then MODES=(off full); else MODES=(off logs full head10 dead); fi
for round in $(seq 1 "$ROUNDS"); do
  for mode in "${MODES[@]}"; do matrix_round "$mode" "$round"; done
done

# 2: the gateway hop, with full telemetry (the demo as it runs), alternating.
say "gateway hop"
# --quick: the matrix's last mode is already full telemetry.
[ "$QUICK" = 1 ] || start_mode full
HOP_RATE=200
[ "$QUICK" = 0 ] || HOP_RATE=50
for round in $(seq 1 "$ROUNDS"); do
  cell section=hop round="$round" path=products via=gateway -- --url "$GATEWAY/api/products" --rate "$HOP_RATE"
  cell section=hop round="$round" path=products via=direct -- --url http://127.0.0.1:8084/products --rate "$HOP_RATE"
  [ "$QUICK" = 0 ] || continue
  cell section=hop round="$round" path=orders via=gateway -- \
    --url "$GATEWAY/api/orders" --method POST --body "$ORDER" --rate "$ORDERS_RATE"
  cell section=hop round="$round" path=orders via=direct -- \
    --url http://127.0.0.1:8081/orders --method POST --body "$ORDER" --rate "$ORDERS_RATE"
done

# 7: the whole stack's capacity, full telemetry: rising order rates until p99 >= 100 ms or
# an error; the CPU of every process of the stack during the last passing step.
say "stack capacity"
if [ "$QUICK" = 1 ]; then RATES=(20); else RATES=(50 100 150 200 250 300 400 500); fi
for rate in "${RATES[@]}"; do
  before=$(python3 scripts/bench/proc_cpu.py)
  out=$("$DRIVER" http --url "$GATEWAY/api/orders" --method POST --body "$ORDER" --rate "$rate" \
    --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --pids "$(service_pids)" --clk-tck "$CLK_TCK")
  record section=capacity rate="$rate" -- "$out"
  record section=capacity-cpu rate="$rate" -- "$(python3 scripts/bench/proc_cpu.py --since "$before")"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["errors"]==0 and d["p99_ms"]<100 else 1)' "$out" || break
done

# 5: trace freshness: the services export to the driver's own OTLP receiver on :4700.
if [ "$QUICK" = 1 ]; then FRESH_MODES=(fresh-demo); else FRESH_MODES=(fresh-default fresh-demo); fi
for mode in "${FRESH_MODES[@]}"; do
  say "trace freshness ($mode)"
  start_mode "$mode"
  if [ "$QUICK" = 1 ]; then
    args=(--count 3 --interval-ms 100 --settle 1.5)
  else
    args=(--count 40 --interval-ms 150 --settle 7)
  fi
  record section=freshness mode="$mode" -- \
    "$("$DRIVER" freshness --url "$GATEWAY/api/products" --listen 127.0.0.1:4700 "${args[@]}")"
done
stop_services

# 6: the collector alone (the services stopped), generated spans at rising rates; refused
# and dropped spans from the collector's own metrics.
say "collector capacity"
COLLECTOR_PID=$(pid_of observability/otel-collector)
collector_counters() {
  curl -fs http://127.0.0.1:8888/metrics | python3 -c '
import json, re, sys
sums = {}
for line in sys.stdin:
    m = re.match(r"(otelcol_[a-z_]*(?:refused|dropped|failed|accepted|too_early)[a-z_]*)(\{[^}]*\})? ([0-9.e+]+)$", line.strip())
    if m:
        sums[m.group(1)] = sums.get(m.group(1), 0) + float(m.group(3))
print(json.dumps(sums))'
}
if [ "$QUICK" = 1 ]; then SPAN_RATES=(2000); else SPAN_RATES=(5000 10000 20000 40000 80000); fi
for rate in "${SPAN_RATES[@]}"; do
  before=$(collector_counters)
  out=$("$DRIVER" otlp --url http://127.0.0.1:4318/v1/traces --rate "$rate" --batch 200 \
    --duration "$SECONDS_PER_RUN" --pids "otel-collector=$COLLECTOR_PID" --clk-tck "$CLK_TCK")
  # The batch and tail sampling stages run after the receiver answered: let them drain.
  if [ "$QUICK" = 1 ]; then sleep 0.5; else sleep 2; fi
  after=$(collector_counters)
  record section=collector rate="$rate" -- "$(python3 -c 'import json,sys
d=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); a=json.loads(sys.argv[3])
d["collector_counters"]={k: a[k]-b.get(k,0) for k in a if a[k]-b.get(k,0)}
print(json.dumps(d))' "$out" "$before" "$after")"
done

# 4: binary sizes.
record section=binaries -- "$(python3 -c 'import json,os,sys
print(json.dumps({"kind":"binaries","bytes":{n: os.path.getsize(os.path.join(sys.argv[1], n)) for n in sys.argv[2:]}}))' \
  "$BIN" "${SERVICES[@]}" otlp-sink)"

STACK_UP=0
scripts/dev-stack.sh down >/dev/null 2>&1

# 3: the criterion bench, after the stack is down (it would compete for the two cores).
CRITERION_LOG="$STATE/criterion.log"
# --workspace --all-features: the feature set every other build here uses, so nothing but
# the bench itself is compiled.
if [ "$QUICK" = 1 ]; then
  # Each benchmark once, in the debug build scripts/test.sh has made: it proves it runs.
  cargo test --locked --workspace --all-features --bench server_layer >"$CRITERION_LOG" 2>&1
else
  say "criterion server-span bench"
  cargo bench --locked --workspace --all-features --bench server_layer >"$CRITERION_LOG" 2>&1
fi

say "writing $OUT ($((SECONDS - started)) s)"
python3 scripts/bench/report.py --results "$RESULTS" --criterion "$CRITERION_LOG" --out "$OUT" \
  --quick "$QUICK" --profile "$CARGO_PROFILE" --rounds "$ROUNDS" --seconds "$SECONDS_PER_RUN" \
  --products-rate "$PRODUCTS_RATE" --orders-rate "$ORDERS_RATE" --hop-rate "$HOP_RATE"
say "done in $((SECONDS - started)) s"
