#!/usr/bin/env bash
# quiet_cost.sh measures what a quiet broker spends, Gannet beside Mosquitto,
# each pinned to one core, in figures that a busy shared machine disturbs
# less than rates and latencies: broker CPU and voluntary context switches
# (all threads, from /proc) per ping-pong message at QoS 0, 1, 2, and broker
# CPU per connection in a connect + reconnect storm (each client connects,
# is cut, connects again and is closed: the figure is per connect and its
# close). Issue 14: the switches show the runtime's thread wake-ups.
#
# Usage: bench/quiet_cost.sh [runs]    (from the repository root)
# Environment: CLIENTS (10000), COUNT (20000), BROKER_CPU (0), BENCH_CPU (1),
# GANNET (a built gannet binary: default builds one).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
CLIENTS=${CLIENTS:-10000}
COUNT=${COUNT:-20000}
BROKER_CPU=${BROKER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
bpid=
cleanup() { [ -n "$bpid" ] && kill "$bpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
if [ -z "${GANNET:-}" ]; then
  go build -o "$tmp/gannet" ./cmd/gannet
  GANNET=$tmp/gannet
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || { echo "mosquitto not found: apt-get install -y mosquitto" >&2; exit 1; }
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }

start() { # broker
  port=$((20000 + RANDOM % 10000))
  case $1 in
    gannet)
      printf 'listeners:\n  - address: 127.0.0.1:%s\n    type: tcp\nstore:\n  type: memory\nsys:\n  interval: 1s\n' "$port" >"$tmp/g.yaml"
      taskset -c "$BROKER_CPU" "$GANNET" --config "$tmp/g.yaml" >"$tmp/g.log" 2>&1 & ;;
    mosquitto)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\nsys_interval 1\n' "$port" >"$tmp/m.conf"
      taskset -c "$BROKER_CPU" "$MOSQUITTO" -c "$tmp/m.conf" >"$tmp/m.log" 2>&1 & ;;
  esac
  bpid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
  echo "$1 did not start" >&2; exit 1
}
stop() { kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; bpid=; }
bench() { taskset -c "$BENCH_CPU" "$GANNET" bench --quiet --json -p "$port" "$@"; }

echo "| broker | run | measure | CPU (µs) | voluntary context switches |"
echo "|---|---|---|---|---|"
for ((i = 1; i <= runs; i++)); do
  for b in gannet mosquitto; do
    start "$b"
    for q in 0 1 2; do
      bench pingpong -q "$q" -C 1000 -i "w$q-" >/dev/null
      c0=$(cpu "$bpid"); s0=$(switches "$bpid")
      n=$(bench pingpong -q "$q" -C "$COUNT" -i "pp$q-" | jq .messages.received)
      c1=$(cpu "$bpid"); s1=$(switches "$bpid")
      awk -v b="$b" -v i="$i" -v q="$q" -v t=$((c1 - c0)) -v k="$tick" -v n="$n" -v s=$((s1 - s0)) \
        'BEGIN { printf "| %s | %d | per ping-pong message, QoS %d | %.1f | %.2f |\n", b, i, q, t / k / n * 1e6, s / n }'
    done
    for kind in clean persistent; do
      flags=(--keepalive 60 --reconnect --duration 1s -c "$CLIENTS" -i "$kind-")
      [ "$kind" = persistent ] && flags+=(--persistent)
      c0=$(cpu "$bpid"); s0=$(switches "$bpid")
      bench conn "${flags[@]}" >/dev/null 2>&1 || true
      c1=$(cpu "$bpid"); s1=$(switches "$bpid")
      awk -v b="$b" -v i="$i" -v kind="$kind" -v t=$((c1 - c0)) -v k="$tick" -v n=$((2 * CLIENTS)) -v s=$((s1 - s0)) \
        'BEGIN { printf "| %s | %d | per connection, %s | %.1f | %.2f |\n", b, i, kind, t / k / n * 1e6, s / n }'
    done
    stop
  done
done
