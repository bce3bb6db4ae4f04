#!/usr/bin/env bash
# The whole demo natively, without Docker: Postgres and Kafka (scripts/infra.sh), a
# stand-in third-party API and the five services, each a background process; with
# --observability also the telemetry backends of docker-compose.yml.
#
#   scripts/dev-stack.sh up [--observability]   build, start everything, wait until all is ready
#   scripts/dev-stack.sh down                   stop what `up` started (services, backends, infra)
#   scripts/dev-stack.sh status                 one line per process; exit 0 if all run, 3 otherwise
#
# Then: curl -s localhost:8080/api/products
#
# --observability builds once (cached under $OTEL_DEMO_CACHE/tools, keyed by version) and starts
# the OpenTelemetry Collector, Prometheus and Alertmanager at the versions docker-compose.yml pins, reading the
# SAME files under observability/ that compose mounts. Only host names, ports that would clash on
# one host, and data paths differ, set through the env variables those files document
# (Prometheus has no env substitution: scripts/observability/prometheus-native-config.sh
# rewrites just the host part of its targets). The services then export OTLP to the collector.
# Tempo and Loki are AGPL-licensed and never built here: `otlp-sink` (crates/otlp-receiver)
# listens where the collector exports to each and writes what arrives (spans, log records,
# each export call's path and compression) as JSON lines to
# $OTEL_DEMO_STATE/observability/{tempo,loki}-sink/.
#   collector   OTLP 127.0.0.1:4317 (gRPC) / :4318 (HTTP), health :13133, own metrics :8888
#   Prometheus  http://127.0.0.1:9090 (rules from observability/rules)
#   Alertmanager http://127.0.0.1:9093 (API only: the Go module has no web UI), notifying
#               alert-webhook on :9097 (GET /alerts; also $OTEL_DEMO_STATE/observability/alert-webhook/)
#   Tempo sink  OTLP in on :4417 (gRPC) / :4418 (HTTP)
#   Loki sink   OTLP/HTTP in on :3100, path /otlp/v1/logs (Loki's)
#
# Environment:
#   OTEL_EXPORTER_OTLP_ENDPOINT   without --observability: if set, every service exports OTLP
#                                 there; if unset, OTEL_SDK_DISABLED=true (JSON logs only)
#   OTELCOL_SET                   with --observability: collector settings changed for this run
#                                 only, space-separated, each passed as `--set` over
#                                 observability/otel-collector.yaml (which stays the one config),
#                                 e.g. connectors::span_metrics::exemplars::enabled=true to see
#                                 the stack test's exemplar check fail
#   ALERT_TIME_SCALE              with --observability: Prometheus loads the alert rules with
#                                 every window and `for` N times shorter (gen_rules.py
#                                 --time-scale N; the stack test uses 20); default 1, the files
#   ADMIN_TOKEN                   bearer token of /admin/faults (default dev-admin-token)
#   CARGO_PROFILE                 dev (default) or release
#   OTEL_DEMO_STATE, OTEL_DEMO_CACHE, POSTGRES_PORT, KAFKA_PORT: see scripts/infra.sh
# Ports: gateway 8080, service-a 8081, service-b 8082, service-c 8083, service-d 8084,
# third-party stand-in 8090. Logs: $OTEL_DEMO_STATE/services/<name>.log and
# $OTEL_DEMO_STATE/observability/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
STATE="${OTEL_DEMO_STATE:-/tmp/otel-rust-demo-stack}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PROFILE="${CARGO_PROFILE:-dev}"
SERVICES_DIR="$STATE/services"
OBS_DIR="$STATE/observability"
# name:port, in start order (dependencies first; each would also wait on its own).
PROCESSES=(third-party-stub:8090 service-d:8084 service-b:8082 service-a:8081 service-c:8083 api-gateway:8080)
# name:ready-URL of the backends, in start order (the collector last: it exports to the others);
# the sinks have no ready endpoint: an open port is ready.
BACKENDS=(loki:port:3100 alert-webhook:http://127.0.0.1:9097/readyz
  alertmanager:http://127.0.0.1:9093/-/ready prometheus:http://127.0.0.1:9090/-/ready
  tempo:port:4417 otel-collector:http://127.0.0.1:13133/)

say() { printf 'dev-stack: %s\n' "$*" >&2; }
die() { printf 'dev-stack: error: %s\n' "$*" >&2; exit 1; }

bin_dir() {
  if [ "$PROFILE" = release ]; then echo "$CARGO_TARGET_DIR/release"; else echo "$CARGO_TARGET_DIR/debug"; fi
}

# pid_of DIR NAME
pid_of() {
  local file="$1/$2.pid" pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

url_ok() { curl -fs -o /dev/null --max-time 2 "$1" 2>/dev/null; }
ready() { url_ok "http://127.0.0.1:$1/readyz"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch DIR NAME COMMAND... : run COMMAND in the background (own session, log DIR/NAME.log).
launch() {
  local dir=$1 name=$2
  shift 2
  (
    cd "$dir"
    # setsid + closed descriptors: the process must not hold the caller's pipes open.
    setsid "$@" </dev/null >"$name.log" 2>&1 3>&- 4>&- 5>&- &
    echo $! >"$name.pid"
  )
  say "started $name (log: $dir/$name.log)"
}

start_process() {
  local name=$1 port=$2
  if pid_of "$SERVICES_DIR" "$name" >/dev/null; then
    say "$name already running"
    return
  fi
  # Something else on the port would answer our readiness probe: refuse to guess.
  port_in_use "$port" && die "port $port (for $name) is already in use by another process"
  PORT=$port OTEL_SERVICE_NAME="$name" launch "$SERVICES_DIR" "$name" "$(bin_dir)/$name"
}

# wait_until DIR NAME CHECK... : poll CHECK until it succeeds, the process dies or time runs out.
wait_until() {
  local dir=$1 name=$2 deadline=$((SECONDS + ${READY_TIMEOUT:-90}))
  shift 2
  until "$@"; do
    pid_of "$dir" "$name" >/dev/null || { tail -n 30 "$dir/$name.log" >&2; die "$name exited"; }
    [ "$SECONDS" -lt "$deadline" ] || {
      tail -n 30 "$dir/$name.log" >&2
      die "$name not ready after ${READY_TIMEOUT:-90}s"
    }
    sleep 0.5
  done
}

# The backends of docker-compose.yml, natively, on the files compose mounts.
start_observability() {
  local otelcol prometheus alertmanager entry name check
  otelcol="$(scripts/observability/build-otelcol.sh)"
  prometheus="$(scripts/observability/build-prometheus.sh)"
  alertmanager="$(scripts/observability/build-alertmanager.sh)"
  for entry in "${BACKENDS[@]}"; do
    name=${entry%%:*}
    pid_of "$OBS_DIR" "$name" >/dev/null && die "$name is already running: scripts/dev-stack.sh down first"
  done
  for port in 3100 9090 9093 9097 4417 4418 4317 4318 13133 8888; do
    port_in_use "$port" && die "port $port (observability backends) is already in use by another process"
  done
  # A fresh start every time: no series, traces or logs left from an earlier run.
  rm -rf "$OBS_DIR"
  mkdir -p "$OBS_DIR"

  # Loki's place: its OTLP path, so a wrong path in the collector config fails here too.
  OTLP_SINK_HTTP=127.0.0.1:3100 OTLP_SINK_HTTP_PREFIX=/otlp OTLP_SINK_DIR="$OBS_DIR/loki-sink" \
    launch "$OBS_DIR" loki "$(bin_dir)/otlp-sink"

  # Alerts: the demo's webhook receiver, then Alertmanager (clustering off, as in compose).
  PORT=9097 LISTEN_HOST=127.0.0.1 ALERT_WEBHOOK_DIR="$OBS_DIR/alert-webhook" \
    launch "$OBS_DIR" alert-webhook "$(bin_dir)/alert-webhook"
  scripts/observability/alertmanager-native-config.sh "$OBS_DIR/alertmanager.yml"
  launch "$OBS_DIR" alertmanager "$alertmanager" --config.file="$OBS_DIR/alertmanager.yml" \
    --storage.path="$OBS_DIR/alertmanager-data" --web.listen-address=127.0.0.1:9093 \
    --cluster.listen-address=

  # The rules as committed, or (ALERT_TIME_SCALE=N) the same rules N times faster.
  local rules="$ROOT/observability/rules"
  if [ "${ALERT_TIME_SCALE:-1}" != 1 ]; then
    rules="$OBS_DIR/rules"
    python3 scripts/observability/gen_rules.py --time-scale "$ALERT_TIME_SCALE" --out "$rules" >&2
  fi
  RULES_DIR="$rules" scripts/observability/prometheus-native-config.sh "$OBS_DIR/prometheus.yml"
  # The same flags as the prometheus service in docker-compose.yml.
  launch "$OBS_DIR" prometheus "$prometheus" --config.file="$OBS_DIR/prometheus.yml" \
    --storage.tsdb.path="$OBS_DIR/prometheus-data" --storage.tsdb.retention.time=2d \
    --web.enable-otlp-receiver --web.enable-remote-write-receiver \
    --enable-feature=exemplar-storage --web.listen-address=127.0.0.1:9090

  # Tempo's place: its OTLP ports as the collector's config names them (gRPC is used).
  OTLP_SINK_GRPC=127.0.0.1:4417 OTLP_SINK_HTTP=127.0.0.1:4418 OTLP_SINK_DIR="$OBS_DIR/tempo-sink" \
    launch "$OBS_DIR" tempo "$(bin_dir)/otlp-sink"

  local overrides=() settings=() setting
  read -ra settings <<<"${OTELCOL_SET:-}"
  for setting in "${settings[@]}"; do overrides+=("--set=$setting"); done
  [ "${#overrides[@]}" = 0 ] || say "collector settings overridden for this run: ${overrides[*]}"
  OTEL_LISTEN_HOST=127.0.0.1 SERVICES_HOST=127.0.0.1 \
    BACKENDS_HOST=127.0.0.1 TEMPO_OTLP_GRPC_PORT=4417 \
    launch "$OBS_DIR" otel-collector "$otelcol" --config="$ROOT/observability/otel-collector.yaml" \
    "${overrides[@]}"

  for entry in "${BACKENDS[@]}"; do
    name=${entry%%:*} check=${entry#*:}
    case "$check" in
      port:*) wait_until "$OBS_DIR" "$name" port_in_use "${check#port:}" ;;
      *) wait_until "$OBS_DIR" "$name" url_ok "$check" ;;
    esac
  done
  # As in docker-compose.yml (x-rust-env).
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  export OTEL_METRIC_EXPORT_INTERVAL="${OTEL_METRIC_EXPORT_INTERVAL:-15000}"
  export OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-200}"
  export OTEL_BLRP_SCHEDULE_DELAY="${OTEL_BLRP_SCHEDULE_DELAY:-200}"
  say "observability ready: Prometheus http://127.0.0.1:9090; traces and logs in $OBS_DIR/{tempo,loki}-sink"
}

cmd_up() {
  local observability=0
  case "${1:-}" in
    --observability) observability=1 ;;
    "") ;;
    *) die "unknown option: $1 (usage: $0 up [--observability])" ;;
  esac
  mkdir -p "$SERVICES_DIR"
  eval "$(scripts/infra.sh up)"
  export DATABASE_URL KAFKA_BROKERS KAFKA_TOPIC
  say "building the services ($PROFILE)"
  # Every binary of the workspace with the features scripts/test.sh builds them with (the
  # tests' too): one feature set, so one build serves the tests, this stack and the stack test.
  cargo build --locked --profile "$PROFILE" --workspace --bins --all-features >&2
  export ADMIN_TOKEN="${ADMIN_TOKEN:-dev-admin-token}"
  if [ "$observability" = 1 ]; then
    start_observability
  elif [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
    export OTEL_SDK_DISABLED=true
    say "OTEL_EXPORTER_OTLP_ENDPOINT is not set: telemetry export is off (JSON logs only)"
  fi
  for entry in "${PROCESSES[@]}"; do start_process "${entry%%:*}" "${entry##*:}"; done
  for entry in "${PROCESSES[@]}"; do wait_until "$SERVICES_DIR" "${entry%%:*}" ready "${entry##*:}"; done
  say "ready: gateway http://127.0.0.1:8080 (try: curl -s localhost:8080/api/products)"
}

# stop_process DIR NAME
stop_process() {
  local dir=$1 name=$2 pid
  pid=$(pid_of "$dir" "$name") || { rm -f "$dir/$name.pid"; return; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop within 10s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
  say "stopped $name"
}

cmd_down() {
  local i
  # Reverse order: the gateway first, then the collector (it flushes to the backends still
  # running), the backends, Postgres and Kafka last.
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop_process "$SERVICES_DIR" "${PROCESSES[$i]%%:*}"; done
  for ((i = ${#BACKENDS[@]} - 1; i >= 0; i--)); do stop_process "$OBS_DIR" "${BACKENDS[$i]%%:*}"; done
  scripts/infra.sh down
}

cmd_status() {
  local all=0 entry name port pid
  for entry in "${PROCESSES[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    if pid=$(pid_of "$SERVICES_DIR" "$name"); then
      if ready "$port"; then echo "$name: ready (pid $pid, :$port)"; else echo "$name: running, not ready (pid $pid, :$port)"; all=3; fi
    else
      echo "$name: stopped"; all=3
    fi
  done
  for entry in "${BACKENDS[@]}"; do
    name=${entry%%:*}
    if pid=$(pid_of "$OBS_DIR" "$name"); then echo "$name: running (pid $pid)"; fi
  done
  scripts/infra.sh status || all=3
  return $all
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
