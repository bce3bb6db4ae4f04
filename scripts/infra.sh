#!/usr/bin/env bash
# Local infrastructure without Docker: a real PostgreSQL server and a real Apache Kafka
# broker (single-node KRaft), run natively for development and the end-to-end tests.
#
#   scripts/infra.sh up       start both (idempotent); prints `export ...` lines on stdout
#   scripts/infra.sh down     stop what `up` started and delete the throwaway data
#   scripts/infra.sh status   one line per component; exit 0 if all run, 3 otherwise
#
#   eval "$(scripts/infra.sh up)"     # sets DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC, ...
#
# Environment:
#   OTEL_DEMO_CACHE        downloads (default: ${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo)
#   OTEL_DEMO_STATE        data, logs, pid files (default: /tmp/otel-rust-demo-stack)
#   POSTGRES_PORT          default 5432 (listens on 127.0.0.1 only)
#   KAFKA_PORT             default 9092 (PLAINTEXT, 127.0.0.1 only)
#   KAFKA_CONTROLLER_PORT  default 9193 (KRaft controller listener; not 9093, Alertmanager's port)
#   KAFKA_TOPIC            default order-events; the dead-letter topic is "$KAFKA_TOPIC.dlq"
#   KAFKA_HEAP_OPTS        default "-Xms256m -Xmx512m"
#   PG_BIN                 PostgreSQL server binaries (default: newest /usr/lib/postgresql/*/bin)
#
# PostgreSQL runs from a fresh `initdb` data dir (never the system cluster), as the
# `postgres` OS user when this script runs as root, with fsync off: the data is throwaway.
# Kafka comes from Maven Central (org.apache.kafka:kafka_2.13 + kafka-tools), cached by version.
set -euo pipefail

KAFKA_VERSION=4.3.1
SCALA_VERSION=2.13
LOG4J_VERSION=2.25.4 # the version kafka-server 4.3.1 depends on
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
STATE="${OTEL_DEMO_STATE:-/tmp/otel-rust-demo-stack}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9193}"
KAFKA_TOPIC="${KAFKA_TOPIC:-order-events}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
PG_USER=demo PG_PASSWORD=demo PG_DB=orders

KAFKA_CACHE="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_CACHE/libs"
PG_DIR="$STATE/postgres"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
PG_PIDFILE="$STATE/postgres.pid"
KAFKA_DIR="$STATE/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOG="$KAFKA_DIR/server.log"
KAFKA_OUT="$KAFKA_DIR/kafka.out"
KAFKA_PIDFILE="$STATE/kafka.pid"

say() { printf 'infra: %s\n' "$*" >&2; }
die() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

# die, showing the last 40 lines of one or more logs
die_with_log() {
  local msg=$1 f
  shift
  printf 'infra: error: %s\n' "$msg" >&2
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf -- '----- last 40 lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    fi
  done
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}

apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get): install it by hand"
  say "installing $* (apt-get)"
  as_root apt-get update -qq </dev/null >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >&2
}

# Prefix for `bash -c`: close every descriptor above 2, so a daemon holds no pipe or lock of
# its caller (`eval "$(infra.sh up)"`, CI runners and `| tee` would otherwise wait for it).
# shellcheck disable=SC2016
CLOSE_FDS='for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null || true; fi; done'

# true if something accepts TCP connections on 127.0.0.1:$1
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# true if pid $1 is alive and its command line contains $2
pid_matches() {
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}
read_pid() { [ -s "$1" ] && head -n 1 "$1" | tr -dc 0-9 || true; }

# ---------------------------------------------------------------------------- PostgreSQL

find_pg_bin() {
  local d
  if [ -n "${PG_BIN:-}" ]; then [ -x "$PG_BIN/initdb" ] && { echo "$PG_BIN"; return; }; return 1; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  d=$(command -v initdb 2>/dev/null) && { dirname "$d"; return; }
  return 1
}

ensure_pg_bin() {
  PG_BIN=$(find_pg_bin) || { apt_install postgresql; PG_BIN=$(find_pg_bin) || die "no PostgreSQL server binaries after install"; }
}

# run a command as the owner of the data dir (postgres refuses to run as root)
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@")
  else "$@"
  fi
}

pg_running() {
  local pid
  pid=$(read_pid "$PG_PIDFILE")
  pid_matches "$pid" postgres
}

pg_healthy() {
  pg_running && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -t 3 >/dev/null 2>&1
}

pg_up() {
  ensure_pg_bin
  if pg_running; then
    if pg_healthy; then say "postgres already running (pid $(read_pid "$PG_PIDFILE"))"; return; fi
    die_with_log "postgres (pid $(read_pid "$PG_PIDFILE")) runs but does not answer; run '$0 down'" "$PG_LOG"
  fi
  if port_open "$POSTGRES_PORT"; then
    die "port 127.0.0.1:$POSTGRES_PORT is already in use by another process: stop it or set POSTGRES_PORT"
  fi
  say "postgres: initdb ($PG_BIN) in $PG_DATA"
  [ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user"
  rm -rf "$PG_DIR" "$PG_PIDFILE"
  mkdir -p "$PG_DATA" "$PG_RUN"
  chmod 700 "$PG_DATA" "$PG_RUN"
  [ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$PG_DIR"
  as_pg test -w "$PG_DATA" ||
    die "the postgres user cannot reach $PG_DATA: set OTEL_DEMO_STATE to a directory it can traverse"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 9>&- \
    || die_with_log "initdb failed" "$PG_DIR/initdb.log"
  cat >"$PG_DATA/pg_hba.conf" <<EOF
# written by scripts/infra.sh: unix socket (private dir) trusted, TCP needs a password
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
  cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- scripts/infra.sh (throwaway development/test server) ---
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$PG_RUN'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PG_DATA/pg_hba.conf"
  say "postgres: starting on 127.0.0.1:$POSTGRES_PORT"
  PG_STARTED=1
  # shellcheck disable=SC2016
  as_pg bash -c "$CLOSE_FDS"'; exec "$@"' pg_ctl "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
    </dev/null >>"$PG_DIR/pg_ctl.log" 2>&1 9>&- \
    || die_with_log "postgres did not start" "$PG_LOG" "$PG_DIR/pg_ctl.log"
  head -n 1 "$PG_DATA/postmaster.pid" >"$PG_PIDFILE"
  echo "$POSTGRES_PORT" >"$STATE/postgres.port"
  local i
  for i in $(seq 1 60); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -t 2 >/dev/null 2>&1 && break
    [ "$i" -lt 60 ] || die_with_log "postgres not ready after 30 s" "$PG_LOG"
    sleep 0.5
  done
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$POSTGRES_PORT" -U postgres -d postgres \
    -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" \
    -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >>"$PG_DIR/pg_ctl.log" 2>&1 9>&- \
    || die_with_log "creating role/database failed" "$PG_DIR/pg_ctl.log" "$PG_LOG"
  say "postgres: ready (pid $(read_pid "$PG_PIDFILE"))"
}

pg_down() {
  local pid i
  pid=$(read_pid "$PG_PIDFILE")
  [ -n "$pid" ] || pid=$(read_pid "$PG_DATA/postmaster.pid")
  if pid_matches "$pid" postgres; then
    say "postgres: stopping (pid $pid)"
    ensure_pg_bin
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 9>&- || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do pid_matches "$pid" postgres || break; sleep 0.2; done
    if pid_matches "$pid" postgres; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  fi
  rm -rf "$PG_DATA" "$PG_RUN" "$PG_PIDFILE" "$STATE/postgres.port"
}

# ---------------------------------------------------------------------------- Kafka

find_java() {
  JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  if ! command -v "$JAVA" >/dev/null; then apt_install openjdk-17-jre-headless; JAVA=java; fi
  local v
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ "${v:-0}" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17 or newer ($JAVA is ${v:-unknown})"
}

# The broker, storage tool, topic/console tools and a log4j2 backend, from Maven Central,
# cached; the pom is the cache key. Kafka's poms pin slf4j-api 1.7.x, so the binding is
# log4j-slf4j-impl (SLF4J 1.x), as in Kafka's own distribution, not log4j-slf4j2-impl.
kafka_pom() {
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.otel-rust-demo</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

ensure_kafka_libs() {
  if [ -f "$KAFKA_LIBS/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] && [ -f "$KAFKA_LIBS/.pom.xml" ] &&
    [ "$(kafka_pom)" = "$(cat "$KAFKA_LIBS/.pom.xml")" ]; then
    return
  fi
  command -v mvn >/dev/null || apt_install maven
  say "kafka: downloading org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION and dependencies into $KAFKA_LIBS"
  mkdir -p "$KAFKA_CACHE"
  kafka_pom >"$KAFKA_CACHE/pom.xml"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -q -B -f "$KAFKA_CACHE/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
      "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS.tmp" </dev/null >"$KAFKA_CACHE/mvn.log" 2>&1; then
    die_with_log "maven could not fetch Kafka $KAFKA_VERSION" "$KAFKA_CACHE/mvn.log"
  fi
  [ -f "$KAFKA_LIBS.tmp/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] || die_with_log "maven did not produce the Kafka jar" "$KAFKA_CACHE/mvn.log"
  cp "$KAFKA_CACHE/pom.xml" "$KAFKA_LIBS.tmp/.pom.xml"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
}

kafka_running() {
  local pid
  pid=$(read_pid "$KAFKA_PIDFILE")
  pid_matches "$pid" kafka.Kafka
}

# a short-lived Kafka tool JVM (C1 only: starts faster)
kafka_tool() {
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.properties" -cp "$KAFKA_LIBS/*" "$@" </dev/null 9>&-
}

write_kafka_config() {
  cat >"$KAFKA_DIR/server.properties" <<EOF
# written by scripts/infra.sh: single-node KRaft broker + controller for development/tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  cat >"$KAFKA_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $KAFKA_LOG
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
EOF
  cat >"$KAFKA_DIR/log4j2-tools.properties" <<EOF
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

check_kafka_ports() {
  local p
  for p in "$KAFKA_PORT:KAFKA_PORT" "$KAFKA_CONTROLLER_PORT:KAFKA_CONTROLLER_PORT"; do
    if port_open "${p%%:*}"; then
      die "port 127.0.0.1:${p%%:*} is already in use by another process: stop it or set ${p#*:}"
    fi
  done
}

kafka_start() {
  find_java
  ensure_kafka_libs
  if kafka_running; then
    say "kafka already running (pid $(read_pid "$KAFKA_PIDFILE"))"
    KAFKA_STARTED=0
    return
  fi
  check_kafka_ports
  rm -rf "$KAFKA_DIR" "$KAFKA_PIDFILE" "$STATE/kafka.port" "$STATE/kafka.topics"
  mkdir -p "$KAFKA_DATA"
  write_kafka_config
  local cluster_id
  # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  say "kafka: formatting storage (cluster id $cluster_id)"
  kafka_tool kafka.tools.StorageTool format --cluster-id "$cluster_id" \
    --config "$KAFKA_DIR/server.properties" --ignore-formatted >"$KAFKA_DIR/format.log" 2>&1 \
    || die_with_log "kafka storage format failed" "$KAFKA_DIR/format.log"
  say "kafka: starting broker on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  # own session, all descriptors to files: `eval "$(infra.sh up)"` must not wait for it
  # shellcheck disable=SC2086,SC2016
  setsid bash -c "$CLOSE_FDS"'; echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
    "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    </dev/null >"$KAFKA_OUT" 2>&1 9>&- &
  printf '%s %s\n' "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" >"$STATE/kafka.port"
  KAFKA_STARTED=1
}

kafka_wait_and_topics() {
  if [ "$KAFKA_STARTED" = 1 ]; then
    local i pid=""
    for i in $(seq 1 180); do
      [ -n "$pid" ] || pid=$(read_pid "$KAFKA_PIDFILE")
      if [ -n "$pid" ] && ! pid_matches "$pid" kafka.Kafka; then
        die_with_log "kafka exited during startup" "$KAFKA_LOG" "$KAFKA_OUT"
      fi
      if grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null && port_open "$KAFKA_PORT"; then break; fi
      [ "$i" -lt 180 ] || die_with_log "kafka not ready after 90 s" "$KAFKA_LOG" "$KAFKA_OUT"
      sleep 0.5
    done
    say "kafka: broker ready (pid $pid)"
  elif ! port_open "$KAFKA_PORT"; then
    die_with_log "kafka (pid $(read_pid "$KAFKA_PIDFILE")) runs but 127.0.0.1:$KAFKA_PORT does not answer; run '$0 down'" "$KAFKA_LOG"
  fi
  topics_created && return
  say "kafka: creating topics $KAFKA_TOPIC (3 partitions), $KAFKA_TOPIC.dlq (1 partition)"
  local t1 t2 ok=1
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --create --if-not-exists --topic "$KAFKA_TOPIC" --partitions 3 --replication-factor 1 \
    >"$KAFKA_DIR/topic-$KAFKA_TOPIC.log" 2>&1 &
  t1=$!
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --create --if-not-exists --topic "$KAFKA_TOPIC.dlq" --partitions 1 --replication-factor 1 \
    >"$KAFKA_DIR/topic-$KAFKA_TOPIC.dlq.log" 2>&1 &
  t2=$!
  wait "$t1" || ok=0
  wait "$t2" || ok=0
  if [ "$ok" = 0 ]; then
    die_with_log "creating Kafka topics failed" "$KAFKA_DIR/topic-$KAFKA_TOPIC.log" \
      "$KAFKA_DIR/topic-$KAFKA_TOPIC.dlq.log" "$KAFKA_LOG"
  fi
  echo "$KAFKA_TOPIC" >>"$STATE/kafka.topics"
}

topics_created() { grep -qxF -- "$KAFKA_TOPIC" "$STATE/kafka.topics" 2>/dev/null; }

kafka_down() {
  local pid i
  pid=$(read_pid "$KAFKA_PIDFILE")
  if pid_matches "$pid" kafka.Kafka; then
    say "kafka: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do pid_matches "$pid" kafka.Kafka || break; sleep 0.2; done
    if pid_matches "$pid" kafka.Kafka; then
      say "kafka: did not stop in 30 s, killing"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -rf "$KAFKA_DATA" "$KAFKA_PIDFILE" "$STATE/kafka.port" "$STATE/kafka.topics"
}

# ---------------------------------------------------------------------------- commands

print_env() {
  cat <<EOF
export DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$POSTGRES_PORT/$PG_DB
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export KAFKA_TOPIC=$KAFKA_TOPIC
export KAFKA_DLQ_TOPIC=$KAFKA_TOPIC.dlq
EOF
}

# a component already running keeps the ports it was started with
use_running_ports() {
  local p
  if pg_running && [ -s "$STATE/postgres.port" ]; then POSTGRES_PORT=$(cat "$STATE/postgres.port"); fi
  if kafka_running && [ -s "$STATE/kafka.port" ]; then
    read -r KAFKA_PORT p <"$STATE/kafka.port"
    KAFKA_CONTROLLER_PORT=${p:-$KAFKA_CONTROLLER_PORT}
  fi
}

lock() {
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 300 9 || die "another infra.sh holds $STATE/.lock"
}

cmd_up() {
  lock
  use_running_ports
  if pg_running && kafka_running && topics_created; then
    ensure_pg_bin
    if pg_healthy && port_open "$KAFKA_PORT"; then
      say "already running and healthy (postgres pid $(read_pid "$PG_PIDFILE") on 127.0.0.1:$POSTGRES_PORT," \
        "kafka pid $(read_pid "$KAFKA_PIDFILE") on 127.0.0.1:$KAFKA_PORT)"
      print_env
      return 0
    fi
  fi
  local start=$SECONDS
  # every port first, before anything starts
  if ! pg_running && port_open "$POSTGRES_PORT"; then
    die "port 127.0.0.1:$POSTGRES_PORT is already in use by another process: stop it or set POSTGRES_PORT"
  fi
  kafka_running || check_kafka_ports
  trap cleanup_failed_up EXIT
  kafka_start # format + launch in the background; postgres starts meanwhile
  pg_up
  kafka_wait_and_topics
  trap - EXIT
  say "up in $((SECONDS - start)) s (logs in $STATE)"
  print_env
}

# a failed `up` stops what it started itself (logs stay for a look)
KAFKA_STARTED=0 PG_STARTED=0
cleanup_failed_up() {
  local rc=$?
  [ "$rc" -ne 0 ] || return 0
  [ "$KAFKA_STARTED$PG_STARTED" != 00 ] || exit "$rc"
  say "up failed: stopping what this run started (logs stay in $STATE)"
  if [ "$KAFKA_STARTED" = 1 ]; then
    [ -s "$KAFKA_PIDFILE" ] || sleep 1
    kafka_down
  fi
  [ "$PG_STARTED" != 1 ] || pg_down
  exit "$rc"
}

cmd_down() {
  lock
  kafka_down
  pg_down
  say "down"
}

cmd_status() {
  local rc=0
  use_running_ports
  if pg_running; then
    echo "postgres: running (pid $(read_pid "$PG_PIDFILE")) on 127.0.0.1:$POSTGRES_PORT"
  else
    echo "postgres: stopped"
    rc=3
  fi
  if kafka_running; then
    echo "kafka: running (pid $(read_pid "$KAFKA_PIDFILE")) on 127.0.0.1:$KAFKA_PORT"
  else
    echo "kafka: stopped"
    rc=3
  fi
  return "$rc"
}

# produce KEY VALUE: one record on $KAFKA_TOPIC (the stack test's poison message for the DLQ).
cmd_produce() {
  [ $# -eq 2 ] || { echo "usage: $0 produce KEY VALUE" >&2; exit 2; }
  use_running_ports
  kafka_running || { echo "kafka is not running: $0 up first" >&2; exit 1; }
  find_java
  printf '%s\t%s\n' "$1" "$2" | "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.properties" -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.tools.ConsoleProducer --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --topic "$KAFKA_TOPIC" --reader-property parse.key=true
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  produce) shift; cmd_produce "$@" ;;
  *)
    echo "usage: $0 up|down|status|produce KEY VALUE" >&2
    exit 2
    ;;
esac
