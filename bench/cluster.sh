#!/usr/bin/env bash
# cluster.sh measures a three-node Gannet cluster (issue 12) beside a single
# node, in one run on this machine: three `gannet` processes on loopback
# meshed by their embedded NATS routes (JetStream, 3 replicas), publishers
# of `gannet bench` on the first node and subscribers on the second, so
# that every message crosses nodes; then the single-node broker (pebble,
# fsync always: the default; and fsync interval) with publishers and
# subscribers on it. For each of QoS 0 and 1, pairs and fan-out (and QoS 1
# pairs with persistent sessions, whose deliveries the store keeps), 64-byte
# payloads: messages received per second, end-to-end p50/p99 latency, and
# the brokers' CPU per million messages received (user + system time of
# every broker process, from /proc/PID/stat). Last, the failover time:
# a client connected to the third node, which is killed with SIGKILL;
# the time until that client (same identifier) is connected on the second
# node, and until it receives there a QoS 1 message published on the first
# (JetStream elects new leaders for what the dead node led: NATS's raft
# election timeout is 4 to 9 s). bench/failover.sh measures it over several
# kills, step by step.
#
# Usage: bench/cluster.sh              (from the repository root)
# Environment: GANNET (a built gannet binary for the brokers: default builds
# one from this tree), BENCH (the gannet binary that runs the bench: default
# the same; it needs --sub-port), DURATION (each run, 5s), PAIRS (4),
# FANOUT (subscribers of a fan-out, 8), WINDOW (QoS 1 window per publisher,
# 100), ONLY (cluster or single: measure one side), FAILOVER (0 to skip).
# Needs jq and mosquitto_pub/mosquitto_sub (Debian mosquitto-clients).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
PAIRS=${PAIRS:-4}
FANOUT=${FANOUT:-8}
WINDOW=${WINDOW:-100}
FAILOVER=${FAILOVER:-1}
for tool in jq mosquitto_pub mosquitto_sub; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y jq mosquitto-clients" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${GANNET:-}" ]; then
  go build -o "$tmp/gannet" ./cmd/gannet
  GANNET=$tmp/gannet
fi
BENCH=${BENCH:-$GANNET}
tick=$(getconf CLK_TCK)

. bench/cluster-ports.sh # the cwd is the repository (above)
single=$next_port

node_pids=()
start_node() { # i (0-based): node n$((i+1))
  local i=$1 n=n$(($1 + 1))
  "$GANNET" --listen "127.0.0.1:${mqtt[$i]}" --data-dir "$tmp/$n" --sys-interval 0 \
    --cluster-name bench --node-name "$n" --cluster-listen "127.0.0.1:${route[$i]}" \
    --cluster-routes "$routes" >"$tmp/$n.log" 2>&1 &
  node_pids[$i]=$!
  pids+=("$!")
}

# ready waits until a QoS 1 message published on one node reaches another:
# JetStream has formed (a quorum elected its leaders) and routes work.
ready() { # pub-port sub-port
  local s
  for _ in $(seq 60); do
    mosquitto_sub -p "$2" -t ready/probe -q 1 -C 1 -W 2 >/dev/null 2>&1 &
    s=$!
    sleep 0.3
    mosquitto_pub -p "$1" -t ready/probe -q 1 -m x >/dev/null 2>&1 || true
    if wait "$s"; then return 0; fi
  done
  echo "the cluster did not form" >&2; tail -20 "$tmp"/n*.log >&2; exit 1
}

cpu_ticks() { # pids... -> sum of utime + stime
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}

declare -A R
rows=()
run() { # label sub-port pids -- bench args
  local label=$1 subport=$2 c0 c1 out n
  shift 2
  local ps=()
  while [ "$1" != -- ]; do ps+=("$1"); shift; done
  shift
  c0=$(cpu_ticks "${ps[@]}")
  out=$("$BENCH" bench pubsub --quiet --json --duration "$DURATION" --sub-port "$subport" "$@")
  c1=$(cpu_ticks "${ps[@]}")
  n=$(jq .messages.received <<<"$out")
  R[$label]=$(jq -r --arg cpu "$(awk -v t=$((c1 - c0)) -v k="$tick" -v n="$n" 'BEGIN{ if (n > 0) printf "%.2f", t/k/n*1e6; else print "-" }')" \
    '[(.messages.sent_per_second|floor), (.messages.received_per_second|floor), .messages.missing,
      ((.latency.p50_ns // 0)/1e6*100|round/100), ((.latency.p99_ns // 0)/1e6*100|round/100), $cpu] | @tsv' <<<"$out")
  rows+=("$label")
  echo "$label: $(tr '\t' ' ' <<<"${R[$label]}")" >&2
}

scenarios() { # prefix pub-port sub-port pids...
  local prefix=$1 pp=$2 sp=$3
  shift 3
  run "$prefix QoS 0 pairs ($PAIRS)" "$sp" "$@" -- -p "$pp" -c "$PAIRS" -q 0 -i "$prefix-q0p-"
  run "$prefix QoS 0 fan-out (1 to $FANOUT)" "$sp" "$@" -- -p "$pp" --shape fan-out -c "$FANOUT" -q 0 -i "$prefix-q0f-"
  run "$prefix QoS 1 pairs ($PAIRS)" "$sp" "$@" -- -p "$pp" -c "$PAIRS" -q 1 --window "$WINDOW" -i "$prefix-q1p-"
  run "$prefix QoS 1 fan-out (1 to $FANOUT)" "$sp" "$@" -- -p "$pp" --shape fan-out -c "$FANOUT" -q 1 --window "$WINDOW" -i "$prefix-q1f-"
  # Persistent sessions: the subscribers' node stores (and with fsync
  # always syncs) each delivery before it goes out.
  run "$prefix QoS 1 pairs ($PAIRS), persistent sessions" "$sp" "$@" -- -p "$pp" -c "$PAIRS" -q 1 --window "$WINDOW" --persistent -i "$prefix-q1pp-"
}

if [ "${ONLY:-}" != single ]; then
  for i in 0 1 2; do start_node "$i"; done
  for i in 0 1 2; do wait_port "${mqtt[$i]}" "${node_pids[$i]}" "$tmp/n$((i + 1)).log"; done
  ready "${mqtt[0]}" "${mqtt[1]}"
  scenarios "cluster R3, cross-node" "${mqtt[0]}" "${mqtt[1]}" "${node_pids[@]}"

  if [ "$FAILOVER" != 0 ]; then
    # A client of n3 (subscribed at QoS 1) loses its node; it counts as
    # served again once, connected with the same identifier to n2, it
    # receives a QoS 1 message published on n1 (publishes every 50 ms).
    mosquitto_sub -p "${mqtt[2]}" -i failover-client -t failover/x -q 1 >/dev/null 2>&1 &
    pids+=("$!")
    sleep 1
    (while :; do mosquitto_pub -p "${mqtt[0]}" -t failover/x -q 1 -m tick >/dev/null 2>&1 || true; sleep 0.05; done) &
    ticker=$!
    pids+=("$ticker")
    t0=$(date +%s.%N)
    kill -9 "${node_pids[2]}"
    wait "${node_pids[2]}" 2>/dev/null || true
    # Connected: its CONNECT accepted on n2 (the owners bucket has a leader).
    until mosquitto_pub -p "${mqtt[1]}" -i failover-client -t failover/probe -q 0 -m x >/dev/null 2>&1; do sleep 0.05; done
    tc=$(date +%s.%N)
    # Served: a QoS 1 message from n1 stored (the messages stream has a
    # leader) and delivered to it.
    until mosquitto_sub -p "${mqtt[1]}" -i failover-client -t failover/x -q 1 -C 1 -W 2 >/dev/null 2>&1; do sleep 0.05; done
    t1=$(date +%s.%N)
    { kill "$ticker" && wait "$ticker"; } 2>/dev/null || true
    failover=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
    reconnect=$(awk -v a="$t0" -v b="$tc" 'BEGIN{printf "%.2f", b - a}')
    echo "failover: connected after ${reconnect}s, served after ${failover}s" >&2
  fi
  for p in "${node_pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
fi

if [ "${ONLY:-}" != cluster ]; then
  for fsync in always interval; do
    rm -rf "$tmp/single"
    "$GANNET" --listen "127.0.0.1:$single" --data-dir "$tmp/single" --sys-interval 0 --fsync "$fsync" >"$tmp/single.log" 2>&1 &
    sp=$!
    pids+=("$sp")
    wait_port "$single" "$sp" "$tmp/single.log"
    scenarios "single node, pebble fsync $fsync" "$single" "$single" "$sp"
    kill "$sp"; wait "$sp" 2>/dev/null || true
  done
fi

echo
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per run, 64-byte payloads, MQTT 3.1.1, QoS 1 window $WINDOW per publisher"
echo "| run | sent msg/s | received msg/s | missing | p50 ms | p99 ms | broker CPU s per 1M received |"
echo "|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
  printf '| %s | %s |\n' "$r" "$(sed 's/\t/ | /g' <<<"${R[$r]}")"
done
[ -n "${failover:-}" ] && echo "| failover: kill -9 of a node until its client is connected on another / served a QoS 1 message there | ${reconnect} s / ${failover} s | | | | | |"
exit 0
