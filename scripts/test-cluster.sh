#!/usr/bin/env bash
# npm run test:cluster: starts the local cluster (scripts/cluster.sh) with the abuse limits off
# (the tests log in hundreds of times from one address, as API.md §6 allows harnesses), runs
# test-cluster/ against it, and always tears it down.
set -uo pipefail
cd "$(dirname "$0")/.."

export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/boardkit-cluster-test}
export CLUSTER_PORT=${CLUSTER_PORT:-8090} API_PORT=${API_PORT:-3111} PROMETHEUS_PORT=${PROMETHEUS_PORT:-9100}
# Limits off, which production refuses (API.md §12): the instances run as a test harness.
export NODE_ENV=test RATE_LIMIT_AUTH=0 RATE_LIMIT_REFRESH=0 RATE_LIMIT_GLOBAL=0 LOGIN_MAX_FAILURES=0

# One run at a time on a machine: the cluster's ports and directory are fixed, and a second run's
# "stop what an interrupted run left" below would tear down the first one's cluster mid-test.
exec 9>/tmp/boardkit-test-cluster.lock
if ! flock -n 9; then
  echo "test:cluster: another run holds /tmp/boardkit-test-cluster.lock; waiting for it"
  flock 9
fi

trap 'bash scripts/cluster.sh stop' EXIT
# A cluster left by an interrupted run would hold the ports.
[ -d "$CLUSTER_DIR" ] && bash scripts/cluster.sh stop
bash scripts/cluster.sh start || exit 1
# Bounded: every loop in the tests has its own cap; this is the guard around them all.
timeout 900 npx tap --disable-coverage --timeout=600 test-cluster/cluster.cluster.ts
