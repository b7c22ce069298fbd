#!/usr/bin/env bash
# A local 3-node MariaDB Galera cluster on loopback, the database of `npm run cluster` and
# `npm run test:cluster` (API.md §11). Never touches the server on 3306: every node has its own
# datadir, socket and ports under $GALERA_DIR.
#
#   scripts/galera.sh start            bootstrap node 1, then join nodes 2 and 3 (SST by rsync)
#   scripts/galera.sh stop             stop every node and delete the cluster's files
#   scripts/galera.sh kill-node N      SIGKILL node N (a crash, for the fault tests)
#   scripts/galera.sh start-node N     restart node N after a kill: recover its position, rejoin by IST
#   scripts/galera.sh status           one line per node
#
# Node N listens for clients on 127.0.0.1:$((GALERA_PORT + N - 1)) (4306, 4307, 4308), root
# without a password (loopback only).
set -euo pipefail

GALERA_DIR=${GALERA_DIR:-/tmp/boardkit-galera}
GALERA_PORT=${GALERA_PORT:-4306}
# Group communication, IST and SST ports: their own ranges, clear of a default Galera's 4567.
GCOMM_BASE=${GCOMM_BASE:-14567}
NODES=(1 2 3)
PROVIDER=/usr/lib/galera/libgalera_smm.so

node_dir () { echo "$GALERA_DIR/node$1"; }
client_port () { echo $((GALERA_PORT + $1 - 1)); }
gcomm_port () { echo $((GCOMM_BASE + $1 - 1)); }
ist_port () { echo $((GCOMM_BASE + 10 + $1 - 1)); }
sst_port () { echo $((GCOMM_BASE + 20 + $1 - 1)); }
# The pid launch() recorded: the server's own pid file is stale after a SIGKILL.
pid_of () { cat "$(node_dir "$1")/launched.pid" 2>/dev/null || true; }
alive () { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
sql () { mariadb --protocol=socket -S "$(node_dir "$1")/mysqld.sock" -uroot -N -B -e "$2" 2>/dev/null; }
log () { echo "galera: $*" >&2; }

write_config () {
  local n=$1 dir addresses=""
  dir=$(node_dir "$n")
  for m in "${NODES[@]}"; do addresses+="${addresses:+,}127.0.0.1:$(gcomm_port "$m")"; done
  mkdir -p "$dir/data"
  # Each option is required by Galera (row binlog, InnoDB, interleaved auto-increment locks) or
  # keeps three nodes within a small machine (64M buffer pool, 32M gcache). The lower EVS
  # timeouts let a killed node leave the cluster in seconds, not the default 5 s/15 s.
  cat >"$dir/my.cnf" <<CNF
[mysqld]
user=mysql
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
port=$(client_port "$n")
bind-address=127.0.0.1
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
max_connections=200
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=boardkit-local
wsrep_cluster_address=gcomm://$addresses
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$(gcomm_port "$n")
wsrep_node_incoming_address=127.0.0.1:$(client_port "$n")
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$n")
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=32M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;pc.wait_prim_timeout=PT30S"
CNF
  # Started by root, mariadbd drops to mysql; rsync SST then writes the joiner's datadir as mysql.
  chown -R mysql:mysql "$dir"
}

wait_synced () {
  local n=$1 seconds=${2:-90} state
  for _ in $(seq 1 $((seconds * 2))); do
    state=$(sql "$n" "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2 || true)
    [ "$state" = "Synced" ] && return 0
    if ! alive "$n"; then
      log "node $n died; see $(node_dir "$n")/error.log"; tail -n 20 "$(node_dir "$n")/error.log" >&2 || true; return 1
    fi
    sleep 0.5
  done
  log "node $n not synced after ${seconds}s (state: ${state:-none})"
  return 1
}

launch () {
  local n=$1; shift
  # setsid: the node outlives this script, in a session of its own (stop/kill-node end it by pid).
  # (Without job control the background job is no group leader, so setsid execs: $! is mariadbd.)
  setsid /usr/sbin/mariadbd --defaults-file="$(node_dir "$n")/my.cnf" "$@" </dev/null >/dev/null 2>&1 &
  echo $! >"$(node_dir "$n")/launched.pid"
}

start_cluster () {
  for n in "${NODES[@]}"; do
    if alive "$n"; then log "node $n is already running (pid $(pid_of "$n"))"; exit 1; fi
  done
  rm -rf "$GALERA_DIR"
  mkdir -p "$GALERA_DIR"
  chmod 755 "$GALERA_DIR"
  for n in "${NODES[@]}"; do write_config "$n"; done

  log "bootstrapping node 1 on port $(client_port 1)"
  mariadb-install-db --defaults-file="$(node_dir 1)/my.cnf" --auth-root-authentication-method=normal >"$(node_dir 1)/install.log" 2>&1
  launch 1 --wsrep-new-cluster
  wait_synced 1
  # Clients connect over TCP from 127.0.0.1; root@localhost covers only the socket.
  sql 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
  for n in 2 3; do
    log "joining node $n on port $(client_port "$n") (state transfer by rsync)"
    launch "$n"
    wait_synced "$n"
  done
  log "3 nodes synced: $(sql 1 "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2) in the cluster"
}

stop_node () {
  local n=$1 pid
  pid=$(pid_of "$n")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_cluster () {
  # The last node first is no better than any other order here: the files go with them.
  for n in 3 2 1; do stop_node "$n"; done
  rm -rf "$GALERA_DIR"
  log "stopped"
}

kill_node () {
  local n=$1 pid
  pid=$(pid_of "$n")
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || { log "node $n is not running"; return 1; }
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "node $n killed (SIGKILL)"
}

start_node () {
  local n=$1 position
  alive "$n" && { log "node $n is already running"; return 0; }
  # After a crash the node must be told where it stopped, or it asks for a full SST instead of
  # the missing writesets (IST from a donor's gcache).
  rm -f "$(node_dir "$n")/recover.log"
  /usr/sbin/mariadbd --defaults-file="$(node_dir "$n")/my.cnf" --wsrep-recover --log-error="$(node_dir "$n")/recover.log" >/dev/null 2>&1 || true
  position=$(grep -o 'Recovered position: [^ ]*' "$(node_dir "$n")/recover.log" | tail -n 1 | cut -d' ' -f3 || true)
  log "restarting node $n at ${position:-an unknown position (full SST)}"
  if [ -n "$position" ]; then launch "$n" --wsrep-start-position="$position"; else launch "$n"; fi
  wait_synced "$n"
}

status () {
  for n in "${NODES[@]}"; do
    if alive "$n"; then
      echo "node $n: port $(client_port "$n"), pid $(pid_of "$n"), $(sql "$n" "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)"
    else
      echo "node $n: down"
    fi
  done
}

case "${1:-}" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  kill-node) kill_node "${2:?node number}" ;;
  start-node) start_node "${2:?node number}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|kill-node N|start-node N|status" >&2; exit 2 ;;
esac
