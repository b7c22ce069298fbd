#!/usr/bin/env bash
# The local model of a production deployment (API.md §11, docs/scaling.md): a 3-node
# Galera cluster, Redis, 3 API instances each preferring its own node, HAProxy in front of them
# health-checking /ready, and Prometheus scraping the instances' metrics (API.md §18,
# docs/metrics.md; its configuration is scripts/prometheus.yml). Everything on loopback.
#
#   npm run cluster              start it all and print the URL (stays up until stopped)
#   npm run cluster -- stop      stop everything this script started and delete its files
#
# Environment: CLUSTER_DIR (state, logs; default /tmp/boardkit-cluster), CLUSTER_PORT (HAProxy,
# default 8080), API_PORT (first instance's port, default 3101; each instance's METRICS_PORT is
# its port + 100), PROMETHEUS_PORT (default CLUSTER_PORT + 1010: 9090); NODE_ENV (default production),
# RATE_LIMIT_* and LOGIN_MAX_FAILURES pass through to the instances (the cluster tests turn the
# limits off, and so run as NODE_ENV=test: production refuses limits at 0).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_DIR=${CLUSTER_DIR:-/tmp/boardkit-cluster}
CLUSTER_PORT=${CLUSTER_PORT:-8080}
API_PORT=${API_PORT:-3101}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-$((CLUSTER_PORT + 1010))}
export GALERA_DIR="$CLUSTER_DIR/galera"
GALERA_PORT=${GALERA_PORT:-4306}
INSTANCES=(1 2 3)
log () { echo "cluster: $*" >&2; }

wait_http () {
  local url=$1 seconds=$2
  for _ in $(seq 1 $((seconds * 4))); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.25
  done
  return 1
}

stop_pid_file () {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_all () {
  stop_pid_file "$CLUSTER_DIR/prometheus.pid"
  stop_pid_file "$CLUSTER_DIR/haproxy.pid"
  for i in "${INSTANCES[@]}"; do stop_pid_file "$CLUSTER_DIR/api$i.pid"; done
  if [ -f "$CLUSTER_DIR/redis-started" ]; then
    redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
  fi
  bash scripts/galera.sh stop 2>/dev/null || true
  rm -rf "$CLUSTER_DIR"
  log "stopped"
}

# The hosts of DATABASE_URL for instance i: its own node first, then the others in turn.
database_url () {
  local i=$1 hosts="" n
  for k in 0 1 2; do
    n=$(( (i - 1 + k) % 3 ))
    hosts+="${hosts:+,}127.0.0.1:$((GALERA_PORT + n))"
  done
  echo "mysql://root@$hosts/boardkit"
}

metrics_port () { echo $((API_PORT + $1 - 1 + 100)); }

start_instance () {
  local i=$1 port=$((API_PORT + i - 1))
  # Its own session: the instance outlives this script, and is stopped by its recorded pid.
  env -i PATH="$PATH" HOME="${HOME:-/root}" \
    NODE_ENV="${NODE_ENV:-production}" HOST=127.0.0.1 PORT="$port" LOG_LEVEL="${LOG_LEVEL:-warn}" \
    DATABASE_URL="$(database_url "$i")" JWT_SECRET="$(cat "$CLUSTER_DIR/jwt-secret")" \
    JWT_KEY_ENCRYPTION_SECRET="$(cat "$CLUSTER_DIR/key-secret")" \
    REDIS_URL=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="boardkit-cluster:" TRUST_PROXY=loopback \
    METRICS_PORT="$(metrics_port "$i")" \
    RATE_LIMIT_AUTH="${RATE_LIMIT_AUTH:-10}" RATE_LIMIT_REFRESH="${RATE_LIMIT_REFRESH:-60}" \
    RATE_LIMIT_GLOBAL="${RATE_LIMIT_GLOBAL:-1000}" LOGIN_MAX_FAILURES="${LOGIN_MAX_FAILURES:-10}" \
    setsid node --import tsx src/server.ts </dev/null >>"$CLUSTER_DIR/api$i.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/api$i.pid"
}

write_haproxy_config () {
  local servers="" i
  for i in "${INSTANCES[@]}"; do
    servers+="    server api$i 127.0.0.1:$((API_PORT + i - 1)) check inter 500ms fall 2 rise 2"$'\n'
  done
  # /ready is 200 only while the instance reaches its database. A request is re-sent to another
  # instance only when the connection to the first failed (nothing was sent, so nothing can be
  # applied twice).
  cat >"$CLUSTER_DIR/haproxy.cfg" <<CFG
global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
    retry-on conn-failure
    option forwardfor
frontend api
    bind 127.0.0.1:$CLUSTER_PORT
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
$servers
CFG
}

# Prometheus (Debian's prometheus package) with scripts/prometheus.yml, scraping each instance's
# METRICS_PORT; its data lives and dies with the cluster's directory.
start_prometheus () {
  local targets="" i
  for i in "${INSTANCES[@]}"; do targets+="${targets:+, }\"127.0.0.1:$(metrics_port "$i")\""; done
  cp scripts/prometheus.yml "$CLUSTER_DIR/prometheus.yml"
  echo "[{\"targets\": [$targets], \"labels\": {\"cluster\": \"local\"}}]" >"$CLUSTER_DIR/targets.json"
  setsid prometheus --config.file="$CLUSTER_DIR/prometheus.yml" --storage.tsdb.path="$CLUSTER_DIR/prometheus" \
    --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    </dev/null >>"$CLUSTER_DIR/prometheus.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/prometheus.pid"
  wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 30 || { log "Prometheus did not become ready; see $CLUSTER_DIR/prometheus.log"; tail -n 20 "$CLUSTER_DIR/prometheus.log" >&2; false; }
}

start_all () {
  command -v haproxy >/dev/null || { log "haproxy is not installed (apt-get install -y haproxy)"; exit 1; }
  command -v prometheus >/dev/null || { log "prometheus is not installed (apt-get install -y prometheus)"; exit 1; }
  if [ -d "$CLUSTER_DIR" ]; then log "$CLUSTER_DIR exists: already running? (npm run cluster -- stop)"; exit 1; fi
  mkdir -p "$CLUSTER_DIR"
  # Whatever fails from here on, leave nothing running.
  trap 'log "start failed; stopping what was started"; stop_all' ERR

  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis on 127.0.0.1:6379"
    redis-server --bind 127.0.0.1 --port 6379 --save '' --daemonize yes >/dev/null
    touch "$CLUSTER_DIR/redis-started"
  fi

  bash scripts/galera.sh start

  node -e "process.stdout.write(require('crypto').randomBytes(48).toString('base64url'))" >"$CLUSTER_DIR/jwt-secret"
  node -e "process.stdout.write(require('crypto').randomBytes(48).toString('base64url'))" >"$CLUSTER_DIR/key-secret"
  # The first instance creates and migrates the database; the others then find it migrated
  # (starting them together would be safe too: the migration lock is a row).
  for i in "${INSTANCES[@]}"; do start_instance "$i"; done
  for i in "${INSTANCES[@]}"; do
    wait_http "http://127.0.0.1:$((API_PORT + i - 1))/ready" 60 || { log "instance $i did not become ready; see $CLUSTER_DIR/api$i.log"; tail -n 20 "$CLUSTER_DIR/api$i.log" >&2; false; }
  done

  write_haproxy_config
  setsid haproxy -f "$CLUSTER_DIR/haproxy.cfg" -db </dev/null >>"$CLUSTER_DIR/haproxy.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/haproxy.pid"
  wait_http "http://127.0.0.1:$CLUSTER_PORT/ready" 20 || { log "HAProxy did not answer; see $CLUSTER_DIR/haproxy.log"; false; }
  start_prometheus
  trap - ERR
  log "3 Galera nodes on 127.0.0.1:$GALERA_PORT-$((GALERA_PORT + 2)), Redis on 6379, instances on $API_PORT-$((API_PORT + 2)) (metrics on $(metrics_port 1)-$(metrics_port 3)), Prometheus on http://127.0.0.1:$PROMETHEUS_PORT"
  echo "http://127.0.0.1:$CLUSTER_PORT"
}

case "${1:-start}" in
  start) start_all ;;
  stop) stop_all ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
