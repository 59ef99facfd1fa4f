#!/usr/bin/env bash
# The local, Docker-free infrastructure of ampflow: Apache Kafka (KRaft, single node), Apicurio Registry
# (Confluent-compatible API, schemas kept in a Kafka topic) and Redis, as plain processes on loopback.
#
#   deploy/local/stack.sh up       fetch (cached) and start what is not running; wait until each answers
#   deploy/local/stack.sh down     stop only the processes this script started; all data is kept
#   deploy/local/stack.sh status   show each component and who runs it
#   deploy/local/stack.sh env      print the variables that point the services at this stack
#   deploy/local/stack.sh reset    stop what this script started and DELETE Kafka's data (every topic and record,
#                                  consumer offsets, and the registry's schemas, which live in Kafka) and the
#                                  services' ampflow:* keys in Redis, which describe that data
#
# Data survives `down` and `up`: Kafka's log directory is formatted once (cluster id kept in
# $AMPFLOW_STATE_DIR/kafka/cluster.id) and the registry replays its journal topic (kafkasql storage), so schema
# ids in records already written keep resolving. Only `reset` deletes data.
#
# Kafka's jars and Apicurio's distribution come from Maven Central through Maven (cached in ~/.m2 and
# unpacked once under $AMPFLOW_CACHE_DIR). Logs, data and pid files live under $AMPFLOW_STATE_DIR.
# AMPFLOW_STACK_COMPONENTS (default kafka,registry,redis) says what `up` starts and `status` shows, e.g.
# kafka,registry for a stack of its own next to the shared Redis (packages/testing/src/fault-stack.ts).
#
# AMPFLOW_KAFKA_BROKERS=3 runs a replicated cluster instead of the single node: one KRaft controller and three
# brokers (default.replication.factor=3, min.insync.replicas=2, internal topics replicated 3 times), brokers on
# AMPFLOW_KAFKA_PORT, +1 and +2, the controller on AMPFLOW_KAFKA_CONTROLLER_PORT (default AMPFLOW_KAFKA_PORT+3).
# Each node has its own directory $AMPFLOW_STATE_DIR/kafka-<n> (data, log, config; n = controller, 1, 2, 3) and
# pid file, apart from the single node's data. AMPFLOW_KAFKA_NODES (default controller,1,2,3) says which of them
# `up` starts, e.g. AMPFLOW_KAFKA_NODES=2 to bring back broker 2 alone. `down` stops every node either mode
# started. See docs/infrastructure.md, "Replicated Kafka".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/local"

# Kafka 4.4.0: the newest release; kafkajs 2.2.4 passes our produce/consume/group/admin smoke suite against it.
# See docs/infrastructure.md for the versions tried and why.
KAFKA_VERSION=${AMPFLOW_KAFKA_VERSION:-4.4.0}
APICURIO_VERSION=${AMPFLOW_APICURIO_VERSION:-3.0.9}
# Apicurio 3.0.9: the newest 3.x on Maven Central that runs on Java 17 (3.3.x is built for Java 21).
STATE_DIR=${AMPFLOW_STATE_DIR:-$ROOT/.ampflow}
CACHE_DIR=${AMPFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ampflow}
KAFKA_PORT=${AMPFLOW_KAFKA_PORT:-9092}
# 1 (the default single broker+controller node) or 3 (a replicated cluster: 3 brokers and 1 controller).
KAFKA_BROKER_COUNT=${AMPFLOW_KAFKA_BROKERS:-1}
KAFKA_NODES=${AMPFLOW_KAFKA_NODES:-controller,1,2,3}
if [[ $KAFKA_BROKER_COUNT == 3 ]]; then
  KAFKA_CONTROLLER_PORT=${AMPFLOW_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 3))}
else
  KAFKA_CONTROLLER_PORT=${AMPFLOW_KAFKA_CONTROLLER_PORT:-9093}
fi
REGISTRY_PORT=${AMPFLOW_REGISTRY_PORT:-8081}
REDIS_PORT=${AMPFLOW_REDIS_PORT:-6379}
if [[ $KAFKA_BROKER_COUNT == 3 ]]; then
  # Per broker; the controller alone gets KAFKA_CONTROLLER_HEAP.
  KAFKA_HEAP=${AMPFLOW_KAFKA_HEAP:-384m}
else
  KAFKA_HEAP=${AMPFLOW_KAFKA_HEAP:-768m}
fi
KAFKA_CONTROLLER_HEAP=${AMPFLOW_KAFKA_CONTROLLER_HEAP:-256m}
REGISTRY_HEAP=${AMPFLOW_REGISTRY_HEAP:-512m}
START_TIMEOUT_S=${AMPFLOW_START_TIMEOUT_S:-120}
COMPONENTS=${AMPFLOW_STACK_COMPONENTS:-kafka,registry,redis}
# The registry's storage topics (created by the registry itself, see start_registry).
REGISTRY_JOURNAL_TOPIC=kafkasql-journal
REGISTRY_SNAPSHOTS_TOPIC=kafkasql-snapshots
REGISTRY_EVENTS_TOPIC=registry-events

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
APICURIO_HOME="$CACHE_DIR/apicurio-registry-$APICURIO_VERSION"
PIDS="$STATE_DIR/pids"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

redis_pong() {
  # A subshell, so that the descriptor and its redirections never leak into this shell.
  (
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 2 reply <&3 || true
    [[ "$reply" == "+PONG"* ]]
  ) 2>/dev/null
}

wanted() { [[ ",$COMPONENTS," == *",$1,"* ]]; }

check_components() {
  local c
  for c in ${COMPONENTS//,/ }; do
    case "$c" in kafka | registry | redis) ;; *) die "AMPFLOW_STACK_COMPONENTS: unknown component '$c' (kafka, registry, redis)" ;; esac
  done
  case "$KAFKA_BROKER_COUNT" in 1 | 3) ;; *) die "AMPFLOW_KAFKA_BROKERS: '$KAFKA_BROKER_COUNT' (1 or 3)" ;; esac
  if [[ $KAFKA_BROKER_COUNT == 3 ]]; then
    for c in ${KAFKA_NODES//,/ }; do
      case "$c" in controller | 1 | 2 | 3) ;; *) die "AMPFLOW_KAFKA_NODES: unknown node '$c' (controller, 1, 2, 3)" ;; esac
    done
    if ((KAFKA_CONTROLLER_PORT >= KAFKA_PORT && KAFKA_CONTROLLER_PORT <= KAFKA_PORT + 2)); then
      die "AMPFLOW_KAFKA_CONTROLLER_PORT $KAFKA_CONTROLLER_PORT is one of the brokers' ports ($KAFKA_PORT-$((KAFKA_PORT + 2)))"
    fi
  fi
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# Alive means running: a killed process stays a zombie here until someone reaps it (PID 1 of this machine does
# not), and kill -0 succeeds on a zombie.
pid_running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

pid_alive() { [[ -f "$PIDS/$1.pid" ]] && pid_running "$(cat "$PIDS/$1.pid")"; }

apt_install() {
  command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available: install $1"
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

require_tools() {
  command -v curl >/dev/null || apt_install curl
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
  [[ "${major%%.*}" -ge 17 ]] || die "Java 17 or newer is required (found $major)"
}

# ---------- downloads (cached) ----------

fetch_kafka() {
  [[ -f "$KAFKA_HOME/.complete" ]] && return 0
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once)"
  rm -rf "$KAFKA_HOME" && mkdir -p "$KAFKA_HOME/libs"
  mvn -B -q -f "$HERE/maven/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" >&2
  touch "$KAFKA_HOME/.complete"
}

fetch_apicurio() {
  [[ -f "$APICURIO_HOME/.complete" ]] && return 0
  log "fetching Apicurio Registry $APICURIO_VERSION from Maven Central (once)"
  rm -rf "$APICURIO_HOME" && mkdir -p "$APICURIO_HOME" "$CACHE_DIR/downloads"
  mvn -B -q -f "$HERE/maven/pom.xml" dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$CACHE_DIR/downloads" >&2
  tar xzf "$CACHE_DIR/downloads/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$APICURIO_HOME"
  apicurio_jar >/dev/null || die "unexpected layout of the Apicurio distribution in $APICURIO_HOME"
  touch "$APICURIO_HOME/.complete"
}

# Quarkus fast-jar layout (quarkus-run.jar) in newer releases, legacy runner jar in older ones.
apicurio_jar() {
  local jar
  for jar in "$APICURIO_HOME/quarkus-run.jar" "$APICURIO_HOME"/apicurio-registry-app-*-runner.jar; do
    [[ -f "$jar" ]] && { echo "$jar"; return 0; }
  done
  return 1
}

# ---------- components ----------

wait_for() { # name check-command...
  local name=$1; shift
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until "$@"; do
    if ! pid_alive "$name"; then
      die "$name exited during start; last lines of $STATE_DIR/$name/$name.log:
$(tail -n 30 "$STATE_DIR/$name/$name.log" 2>/dev/null)"
    fi
    ((SECONDS < deadline)) || die "$name did not answer within ${START_TIMEOUT_S}s (see $STATE_DIR/$name/$name.log)"
    sleep 0.5
  done
}

start_redis() {
  if redis_pong; then
    pid_alive redis || log "redis: using the server already answering on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$STATE_DIR/redis"
  # Started like Kafka (in the background, its pid taken from $!) rather than with --daemonize: a daemonized
  # server writes its pid file only after it forks, so the first readiness check could find no pid file and
  # report a healthy start as a crash.
  nohup redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$STATE_DIR/redis" --logfile "$STATE_DIR/redis/redis.log" >/dev/null 2>&1 &
  echo $! >"$PIDS/redis.pid"
  wait_for redis redis_pong
  log "redis: started on 127.0.0.1:$REDIS_PORT"
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$STATE_DIR/kafka/kafka.log"; }

# Keeps the previous run's log next to the new one (the interesting one after a crash or a kill).
fresh_log() { [[ -s "$1" ]] && mv -f "$1" "$1.1"; : >"$1"; }

# The cluster id of this state dir: generated once by Kafka's own `random-uuid` (never starts with '-', which
# the storage tool would read as an option) and kept in $dir/cluster.id. A data dir formatted by an older
# version of this script, before cluster.id existed, gives its id from meta.properties.
kafka_cluster_id() { # dir java-options...
  local dir=$1; shift
  local id=""
  if [[ -s "$dir/cluster.id" ]]; then
    id=$(<"$dir/cluster.id")
  elif [[ -f "$dir/data/meta.properties" ]]; then
    id=$(sed -n 's/^cluster\.id=//p' "$dir/data/meta.properties")
    # Kept, never wiped; but records from those days name schema ids of the old in-memory registry.
    log "kafka: keeping data written before the registry stored its schemas in Kafka; records from then may" \
      "name schema ids that no longer exist or mean another schema ('stack.sh reset' starts clean)"
  else
    id=$(java "$@" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  fi
  [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "invalid Kafka cluster id '$id' (from $dir/cluster.id or meta.properties)"
  echo "$id" >"$dir/cluster.id"
  echo "$id"
}

start_kafka() {
  if pid_alive kafka; then return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this script did not start"
  fetch_kafka
  local dir="$STATE_DIR/kafka"
  mkdir -p "$dir/data"
  sed -e "s#@DATA_DIR@#$dir/data#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$HERE/kafka/server.properties" >"$dir/server.properties"
  local cp="$KAFKA_HOME/libs/*"
  local jvm=(-Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.properties")
  local cluster_id
  cluster_id=$(kafka_cluster_id "$dir" -Xmx128m -cp "$cp")
  # Format only a log directory that is not formatted yet: the data of earlier runs (topics, records, offsets
  # and the registry's journal) is kept. `reset` is the one command that deletes it.
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    # --cluster-id=<id>, not -t <id>: an id is never taken for an option this way.
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format "--cluster-id=$cluster_id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || die "formatting Kafka storage failed: $(cat "$dir/format.log")"
    log "kafka: formatted a new log directory $dir/data (cluster id $cluster_id)"
  fi
  fresh_log "$dir/kafka.log"
  nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 &
  echo $! >"$PIDS/kafka.pid"
  wait_for kafka kafka_ready
  log "kafka $KAFKA_VERSION: started on 127.0.0.1:$KAFKA_PORT"
}

# ---------- the replicated cluster (AMPFLOW_KAFKA_BROKERS=3) ----------
#
# Three brokers and one controller rather than three combined broker+controller nodes: with a 3-voter quorum on
# the same processes, killing two brokers would also lose the quorum, and without a controller nothing fences
# the dead brokers, shrinks the ISR or elects a leader: writes would time out instead of failing with
# NOT_ENOUGH_REPLICAS, which is the failure min.insync.replicas=2 exists to give. A dedicated controller keeps the
# metadata side alive while brokers die (as separate controller nodes do in production); it is a single point
# of failure of this local cluster, and not one the tests kill.

broker_port() { echo $((KAFKA_PORT + $1 - 1)); }

# The brokers' bootstrap list, comma-separated.
cluster_brokers() {
  local list="" i
  for i in 1 2 3; do list+="${list:+,}127.0.0.1:$(broker_port "$i")"; done
  echo "$list"
}

kafka_node_wanted() { [[ ",$KAFKA_NODES," == *",$1,"* ]]; }

node_ready() { # name port
  port_open "$2" && grep -q 'Kafka Server started' "$STATE_DIR/$1/$1.log"
}

# Renders the node's config, formats its log directory once (all nodes share one cluster id), starts it in the
# background and records its pid. Does not wait.
launch_kafka_node() { # node(controller|1|2|3) cluster-id
  local node=$1 cluster_id=$2
  local name="kafka-$node" dir="$STATE_DIR/kafka-$node" port heap template node_id
  if [[ $node == controller ]]; then
    port=$KAFKA_CONTROLLER_PORT heap=$KAFKA_CONTROLLER_HEAP template=cluster-controller.properties node_id=0
  else
    port=$(broker_port "$node") heap=$KAFKA_HEAP template=cluster-broker.properties node_id=$node
  fi
  port_open "$port" && die "port $port ($name) is taken by a process this script did not start"
  mkdir -p "$dir/data"
  sed -e "s#@DATA_DIR@#$dir/data#" -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@NODE_ID@#$node_id#g" "$HERE/kafka/$template" >"$dir/server.properties"
  local cp="$KAFKA_HOME/libs/*"
  local jvm=(-Xms128m "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.properties")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format "--cluster-id=$cluster_id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || die "formatting $name's storage failed: $(cat "$dir/format.log")"
    log "$name: formatted a new log directory $dir/data (cluster id $cluster_id)"
  fi
  fresh_log "$dir/$name.log"
  nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$dir/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

# Starts the nodes of AMPFLOW_KAFKA_NODES that are not running: the controller first (a broker registers with
# it before it serves), then the brokers side by side; waits until each answers. A broker logs "Kafka Server
# started" only once the controller has unfenced it.
start_kafka_cluster() {
  fetch_kafka
  mkdir -p "$STATE_DIR/kafka-cluster"
  local cluster_id node started=()
  cluster_id=$(kafka_cluster_id "$STATE_DIR/kafka-cluster" -Xmx128m -cp "$KAFKA_HOME/libs/*")
  if kafka_node_wanted controller && ! pid_alive kafka-controller; then
    launch_kafka_node controller "$cluster_id"
    wait_for kafka-controller node_ready kafka-controller "$KAFKA_CONTROLLER_PORT"
    log "kafka $KAFKA_VERSION controller: started on 127.0.0.1:$KAFKA_CONTROLLER_PORT"
  fi
  for node in 1 2 3; do
    if kafka_node_wanted "$node" && ! pid_alive "kafka-$node"; then
      launch_kafka_node "$node" "$cluster_id"
      started+=("$node")
    fi
  done
  for node in "${started[@]}"; do
    wait_for "kafka-$node" node_ready "kafka-$node" "$(broker_port "$node")"
    log "kafka $KAFKA_VERSION broker $node: started on 127.0.0.1:$(broker_port "$node")"
  done
}

# Ready (Quarkus health, which includes the storage having replayed the journal) and the ccompat API answers.
registry_ready() {
  http_ok "http://127.0.0.1:$REGISTRY_PORT/health/ready" &&
    http_ok "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects"
}

start_registry() {
  if pid_alive registry; then return 0; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by a process this script did not start"
  fetch_apicurio
  kafka_answers || die "the registry keeps its schemas in Kafka, and nothing answers on $(kafka_bootstrap)"
  local dir="$STATE_DIR/registry"
  mkdir -p "$dir/snapshots"
  fresh_log "$dir/registry.log"
  # kafkasql storage: every change is journaled to a topic of this Kafka and replayed into the registry's own
  # in-memory H2 at start, the way Confluent's registry keeps _schemas, so ids survive restarts.
  # The registry creates its three topics through the admin API (auto.create.topics.enable=false does not stop
  # that): one partition, replication min(3, brokers) (1 with the single node, 3 with AMPFLOW_KAFKA_BROKERS=3),
  # min.insync.replicas the broker default. The properties under
  # apicurio.kafkasql.topic.* apply to all three; infinite retention, because the journal is replayed from its
  # first record and the broker's default retention (24 h) would otherwise delete schemas still in use.
  # Compaction would not help: every journal record has a key of its own.
  # Snapshots (made only on request, POST /apis/registry/v3/admin/snapshots) go to the state dir, not /tmp.
  # Poll timeout 1 s instead of 5 s: at start the registry polls the snapshots topic once and waits the whole
  # timeout when it is empty (restart to ready: about 5 s instead of 8.5 s). Without a snapshot, or if this
  # poll misses it, the whole journal is replayed, which gives the same state.
  # Deletions enabled so tests and operators can clean subjects.
  # `cd` on its own line: with `cd && java &` the whole list is backgrounded and $! is a subshell, not java.
  (cd "$dir"
    nohup java -Xms128m "-Xmx$REGISTRY_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.level=WARN -Dquarkus.log.category.\"io.apicurio\".level=INFO \
    -Dquarkus.analytics.disabled=true -Dquarkus.http.access-log.enabled=false \
    -Dapicurio.storage.kind=kafkasql \
    -Dapicurio.kafkasql.bootstrap.servers="$(kafka_bootstrap)" \
    -Dapicurio.kafkasql.topic="$REGISTRY_JOURNAL_TOPIC" \
    -Dapicurio.kafkasql.snapshots.topic="$REGISTRY_SNAPSHOTS_TOPIC" \
    -Dapicurio.events.kafka.topic="$REGISTRY_EVENTS_TOPIC" \
    -Dapicurio.kafkasql.topic.cleanup.policy=delete \
    -Dapicurio.kafkasql.topic.retention.ms=-1 -Dapicurio.kafkasql.topic.retention.bytes=-1 \
    -Dapicurio.storage.snapshot.location="$dir/snapshots" -Dapicurio.kafkasql.consumer.poll.timeout=1000 \
    -Dapicurio.rest.deletion.artifact.enabled=true -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -Dapicurio.rest.deletion.group.enabled=true \
    -jar "$(apicurio_jar)" >>"$dir/registry.log" 2>&1 &
    echo $! >"$PIDS/registry.pid")
  wait_for registry registry_ready
  log "apicurio registry $APICURIO_VERSION: started on 127.0.0.1:$REGISTRY_PORT (ccompat /apis/ccompat/v7," \
    "schemas in Kafka topic $REGISTRY_JOURNAL_TOPIC)"
}

stop_one() {
  local name=$1
  pid_alive "$name" || { rm -f "$PIDS/$name.pid"; return 0; }
  local pid
  pid=$(cat "$PIDS/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do pid_running "$pid" || break; sleep 0.5; done
  if pid_running "$pid"; then
    log "$name did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
  log "$name: stopped"
}

status_line() { # name endpoint check-command...
  local name=$1 endpoint=$2; shift 2
  local state owner
  if "$@"; then state=up; else state=down; fi
  if pid_alive "$name"; then owner="started by stack.sh (pid $(cat "$PIDS/$name.pid"))"
  elif [[ $state == up ]]; then owner="external"
  else owner="-"; fi
  printf '%-9s %-5s %-32s %s\n' "$name" "$state" "$endpoint" "$owner"
}

# The Kafka bootstrap list of the selected mode.
kafka_bootstrap() {
  if [[ $KAFKA_BROKER_COUNT == 3 ]]; then cluster_brokers; else echo "127.0.0.1:$KAFKA_PORT"; fi
}

# Some broker of the selected mode answers.
kafka_answers() {
  if [[ $KAFKA_BROKER_COUNT == 3 ]]; then
    port_open "$(broker_port 1)" || port_open "$(broker_port 2)" || port_open "$(broker_port 3)"
  else
    port_open "$KAFKA_PORT"
  fi
}

print_env() {
  cat <<EOF
KAFKA_BROKERS=$(kafka_bootstrap)
SCHEMA_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
EOF
}

# Whatever AMPFLOW_STACK_COMPONENTS and AMPFLOW_KAFKA_BROKERS say: stop everything this state dir's pid files
# name, registry first so that its producer flushes to a Kafka that still runs, the replicated cluster's
# brokers before its controller (a broker's clean shutdown hands its leaderships over through the controller).
stop_all() {
  stop_one registry
  stop_one kafka
  stop_brokers
  stop_one kafka-controller
  stop_one redis
}

# The replicated cluster's brokers, side by side: each gets SIGTERM at once, then up to 30 s to exit.
stop_brokers() {
  local node pid running=()
  for node in 1 2 3; do
    if pid_alive "kafka-$node"; then
      kill -TERM "$(cat "$PIDS/kafka-$node.pid")" 2>/dev/null || true
      running+=("$node")
    else
      rm -f "$PIDS/kafka-$node.pid"
    fi
  done
  for node in "${running[@]}"; do
    pid=$(cat "$PIDS/kafka-$node.pid")
    for _ in $(seq 1 60); do pid_running "$pid" || break; sleep 0.5; done
    if pid_running "$pid"; then
      log "kafka-$node did not stop within 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/kafka-$node.pid"
    log "kafka-$node: stopped"
  done
}

reset_data() {
  stop_all
  # Ours is stopped now; a broker still answering was started some other way and may be using this directory.
  if kafka_answers; then
    die "a Kafka this script did not start answers on $(kafka_bootstrap); stop it first (nothing deleted)"
  fi
  if [[ $KAFKA_BROKER_COUNT == 3 ]]; then
    rm -rf "$STATE_DIR"/kafka-{controller,1,2,3}/data "$STATE_DIR/kafka-cluster" "$STATE_DIR/registry/snapshots"
    log "reset: deleted the replicated cluster's data under $STATE_DIR/kafka-* (every topic, record and consumer"
    log "offset, and the registry's schemas, which live in the topic $REGISTRY_JOURNAL_TOPIC); the next 'up' starts"
    log "an empty cluster"
    reset_redis_keys
    return 0
  fi
  rm -rf "$STATE_DIR/kafka/data" "$STATE_DIR/kafka/cluster.id" "$STATE_DIR/registry/snapshots"
  log "reset: deleted Kafka's data under $STATE_DIR/kafka (every topic, record and consumer offset, and the"
  log "registry's schemas, which live in the topic $REGISTRY_JOURNAL_TOPIC); the next 'up' starts an empty cluster"
  reset_redis_keys
}

# The services' state in Redis describes the Kafka data just deleted (the ingress's "already stored" marks, the
# aggregator's session states and restore marker): kept, it would make a new cluster drop redeliveries as
# duplicates and resume sessions from another cluster. Only ampflow's default namespaces (`ampflow:*`) go; the
# Redis itself, and anything else in it, stays.
reset_redis_keys() {
  redis_pong || { log "reset: no Redis answers on 127.0.0.1:$REDIS_PORT; its ampflow:* keys (if any) are left"; return 0; }
  command -v redis-cli >/dev/null || { log "reset: redis-cli not found; ampflow:* keys in Redis are left"; return 0; }
  local count
  count=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 'ampflow:*' |
    xargs -r -n 500 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" unlink | awk '{n += $1} END {print n + 0}')
  log "reset: deleted $count ampflow:* keys from the Redis on 127.0.0.1:$REDIS_PORT"
}

main() {
  local cmd=${1:-} node
  check_components
  case "$cmd" in
    up)
      require_tools
      mkdir -p "$PIDS"
      # Redis is independent; the registry needs Kafka, so Kafka first.
      if wanted redis; then start_redis; fi
      if wanted kafka; then
        if [[ $KAFKA_BROKER_COUNT == 3 ]]; then start_kafka_cluster; else start_kafka; fi
      fi
      if wanted registry; then start_registry; fi
      ;;
    down) stop_all ;;
    reset) reset_data ;;
    status)
      if wanted kafka && [[ $KAFKA_BROKER_COUNT == 3 ]]; then
        status_line kafka-controller "127.0.0.1:$KAFKA_CONTROLLER_PORT" port_open "$KAFKA_CONTROLLER_PORT"
        for node in 1 2 3; do status_line "kafka-$node" "127.0.0.1:$(broker_port "$node")" port_open "$(broker_port "$node")"; done
      elif wanted kafka; then
        status_line kafka "127.0.0.1:$KAFKA_PORT" port_open "$KAFKA_PORT"
      fi
      if wanted registry; then status_line registry "http://127.0.0.1:$REGISTRY_PORT" registry_ready; fi
      if wanted redis; then status_line redis "redis://127.0.0.1:$REDIS_PORT" redis_pong; fi
      ;;
    env) print_env ;;
    *) echo "usage: $0 up|down|status|env|reset   (reset deletes Kafka's data and the registry's schemas)" >&2; exit 2 ;;
  esac
}

main "$@"
