#!/usr/bin/env bash
# The whole demo natively, without Docker: Postgres and Kafka (scripts/infra.sh), a
# stand-in third-party API and the five services, each a background process.
#
#   scripts/dev-stack.sh up       build, start everything, wait until every /readyz is 200
#   scripts/dev-stack.sh down     stop what `up` started (services, then Kafka and Postgres)
#   scripts/dev-stack.sh status   one line per process; exit 0 if all run, 3 otherwise
#
# Then: curl -s localhost:8080/api/products
#
# Environment:
#   OTEL_EXPORTER_OTLP_ENDPOINT   if set, every service exports OTLP there; if unset,
#                                 OTEL_SDK_DISABLED=true (JSON logs only)
#   ADMIN_TOKEN                   bearer token of /admin/faults (default dev-admin-token)
#   CARGO_PROFILE                 dev (default) or release
#   OTEL_DEMO_STATE, OTEL_DEMO_CACHE, POSTGRES_PORT, KAFKA_PORT: see scripts/infra.sh
# Ports: gateway 8080, service-a 8081, service-b 8082, service-c 8083, service-d 8084,
# third-party stand-in 8090. Logs: $OTEL_DEMO_STATE/services/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
STATE="${OTEL_DEMO_STATE:-/tmp/otel-rust-demo-stack}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PROFILE="${CARGO_PROFILE:-dev}"
SERVICES_DIR="$STATE/services"
# name:port, in start order (dependencies first; each would also wait on its own).
PROCESSES=(third-party-stub:8090 service-d:8084 service-b:8082 service-a:8081 service-c:8083 api-gateway:8080)

say() { printf 'dev-stack: %s\n' "$*" >&2; }
die() { printf 'dev-stack: error: %s\n' "$*" >&2; exit 1; }

bin_dir() {
  if [ "$PROFILE" = release ]; then echo "$CARGO_TARGET_DIR/release"; else echo "$CARGO_TARGET_DIR/debug"; fi
}

pid_of() {
  local file="$SERVICES_DIR/$1.pid" pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ready() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/readyz" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_process() {
  local name=$1 port=$2
  if pid_of "$name" >/dev/null; then
    say "$name already running"
    return
  fi
  # Something else on the port would answer our readiness probe: refuse to guess.
  port_in_use "$port" && die "port $port (for $name) is already in use by another process"
  (
    cd "$SERVICES_DIR"
    # setsid + closed descriptors: the service must not hold the caller's pipes open.
    PORT=$port OTEL_SERVICE_NAME="$name" setsid "$(bin_dir)/$name" </dev/null >"$name.log" 2>&1 3>&- 4>&- 5>&- &
    echo $! >"$name.pid"
  )
  say "started $name on :$port (log: $SERVICES_DIR/$name.log)"
}

wait_ready() {
  local name=$1 port=$2 deadline=$((SECONDS + ${READY_TIMEOUT:-90}))
  until ready "$port"; do
    pid_of "$name" >/dev/null || { tail -n 30 "$SERVICES_DIR/$name.log" >&2; die "$name exited"; }
    [ "$SECONDS" -lt "$deadline" ] || {
      tail -n 30 "$SERVICES_DIR/$name.log" >&2
      die "$name not ready after ${READY_TIMEOUT:-90}s: $(curl -s "http://127.0.0.1:$port/readyz")"
    }
    sleep 0.5
  done
}

cmd_up() {
  mkdir -p "$SERVICES_DIR"
  eval "$(scripts/infra.sh up)"
  export DATABASE_URL KAFKA_BROKERS KAFKA_TOPIC
  say "building the services ($PROFILE)"
  cargo build --locked --profile "$PROFILE" \
    -p api-gateway -p service-a -p service-b -p service-c -p service-d -p third-party-stub >&2
  export ADMIN_TOKEN="${ADMIN_TOKEN:-dev-admin-token}"
  if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
    export OTEL_SDK_DISABLED=true
    say "OTEL_EXPORTER_OTLP_ENDPOINT is not set: telemetry export is off (JSON logs only)"
  fi
  for entry in "${PROCESSES[@]}"; do start_process "${entry%%:*}" "${entry##*:}"; done
  for entry in "${PROCESSES[@]}"; do wait_ready "${entry%%:*}" "${entry##*:}"; done
  say "ready: gateway http://127.0.0.1:8080 (try: curl -s localhost:8080/api/products)"
}

stop_process() {
  local name=$1 pid
  pid=$(pid_of "$name") || { rm -f "$SERVICES_DIR/$name.pid"; return; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop within 10s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$SERVICES_DIR/$name.pid"
  say "stopped $name"
}

cmd_down() {
  local i
  # Reverse order: the gateway first, Postgres and Kafka last.
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop_process "${PROCESSES[$i]%%:*}"; done
  scripts/infra.sh down
}

cmd_status() {
  local all=0 entry name port pid
  for entry in "${PROCESSES[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    if pid=$(pid_of "$name"); then
      if ready "$port"; then echo "$name: ready (pid $pid, :$port)"; else echo "$name: running, not ready (pid $pid, :$port)"; all=3; fi
    else
      echo "$name: stopped"; all=3
    fi
  done
  scripts/infra.sh status || all=3
  return $all
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
