#!/usr/bin/env bash
# compare.sh runs Gannet and Mosquitto side by side, each broker pinned to
# one core with taskset, and prints each measure with the ratio Gannet /
# Mosquitto: unloaded latency (gannet bench pingpong at QoS 0, 1, 2) with
# the broker's CPU per message, connection rate and a reconnect storm (clean
# and persistent sessions), and memory per idle connection (RSS, and the
# broker's own $SYS/broker/heap/current where it publishes one).
#
# Usage: bench/compare.sh [runs]      (from the repository root)
# Environment: CLIENTS (10000), COUNT (pingpong messages, 20000),
# BROKER_CPU (0), BENCH_CPU (1), GANNET (a built gannet binary: default
# builds one), ONLY (gannet or mosquitto: run one broker only),
# MODE: quiet (the default: the side-by-side measures), loaded (Gannet
# only: 8 pairs, fan-in, fan-out at QoS 0/1/2, window 100, 5s each,
# messages received per second) or all.
# Each cell shows every run's figure and, in brackets, their mean; the
# ratio is of the means.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
CLIENTS=${CLIENTS:-10000}
COUNT=${COUNT:-20000}
BROKER_CPU=${BROKER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${GANNET:-}" ]; then
  go build -o "$tmp/gannet" ./cmd/gannet
  GANNET=$tmp/gannet
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || { echo "mosquitto not found: apt-get install -y mosquitto" >&2; exit 1; }

gport=$((20000 + RANDOM % 10000)); mport=$((gport + 1))
cat >"$tmp/gannet.yaml" <<YAML
listeners:
  - address: 127.0.0.1:$gport
    type: tcp
store:
  type: memory
sys:
  interval: 1s
YAML
cat >"$tmp/mosquitto.conf" <<CONF
listener $mport 127.0.0.1
allow_anonymous true
sys_interval 1
max_queued_messages 100000
max_inflight_messages 100
CONF

start_broker() { # name -> sets bpid, port
  case $1 in
    gannet)
      taskset -c "$BROKER_CPU" "$GANNET" --config "$tmp/gannet.yaml" >"$tmp/gannet.log" 2>&1 &
      bpid=$!; port=$gport ;;
    mosquitto)
      taskset -c "$BROKER_CPU" "$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
      bpid=$!; port=$mport ;;
  esac
  pids+=("$bpid")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start" >&2; cat "$tmp/$1.log" >&2; exit 1
}
stop_broker() { kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
tick=$(getconf CLK_TCK)
bench() { taskset -c "$BENCH_CPU" "$GANNET" bench --quiet --json -p "$port" "$@"; }

declare -A R  # R[broker,measure] = the values of each run, space-separated
add() { R[$1,$2]="${R[$1,$2]:-} $3"; }

measure() { # broker
  local b=$1 q out c0 c1 n r0 r1
  start_broker "$b"
  for q in 0 1 2; do
    bench pingpong -q "$q" -C 1000 -i "warm$q-" >/dev/null
    c0=$(cpu_ticks "$bpid")
    out=$(bench pingpong -q "$q" -C "$COUNT" -i "pp$q-")
    c1=$(cpu_ticks "$bpid")
    n=$(jq .messages.received <<<"$out")
    add "$b" "q$q.p50" "$(jq '.latency.p50_ns/1e6' <<<"$out")"
    add "$b" "q$q.p99" "$(jq '.latency.p99_ns/1e6' <<<"$out")"
    add "$b" "q$q.cpu" "$(awk -v t=$((c1 - c0)) -v k="$tick" -v n="$n" 'BEGIN{print t/k/n*1e6}')"
  done
  stop_broker
  # Connections: a fresh broker for each kind, so memory is measured clean.
  for kind in clean persistent; do
    start_broker "$b"
    sleep 1.5
    r0=$(rss_kib "$bpid")
    local flags=(--keepalive 60 --memory-topic '$SYS/broker/heap/current' --reconnect --duration 3s -c "$CLIENTS" -i "$kind-")
    [ "$kind" = persistent ] && flags+=(--persistent)
    out=$(bench conn "${flags[@]}" 2>/dev/null || true)
    add "$b" "$kind.rate" "$(jq .connections.per_second <<<"$out")"
    add "$b" "$kind.storm" "$(jq '.reconnect.setup_ns/1e9' <<<"$out")"
    add "$b" "$kind.heap" "$(jq '(.memory.per_connection_bytes // 0)/1024' <<<"$out")"
    if [ "$kind" = clean ]; then
      # RSS with the connections held: a separate hold, sampled in the middle.
      bench conn --keepalive 60 --duration 4s -c "$CLIENTS" -i rss- >/dev/null &
      local hold=$!
      sleep 3
      r1=$(rss_kib "$bpid")
      wait "$hold" || true
      add "$b" "rss" "$(awk -v a="$r0" -v b="$r1" -v n="$CLIENTS" 'BEGIN{print (b-a)/n}')"
    fi
    stop_broker
  done
}

loaded() { # Gannet only: the figures under load must not fall
  start_broker gannet
  local q shape out
  for q in 0 1 2; do
    for shape in pairs fan-in fan-out; do
      out=$(bench pubsub --shape "$shape" -c 8 -q "$q" --window 100 --duration 5s -i "load-$shape-$q-")
      add gannet "load.$shape.q$q" "$(jq .messages.received_per_second <<<"$out")"
    done
  done
  stop_broker
}

MODE=${MODE:-quiet}
brokers=(gannet mosquitto)
[ -n "${ONLY:-}" ] && brokers=("$ONLY")
for ((i = 1; i <= runs; i++)); do
  if [ "$MODE" != loaded ]; then
    for b in "${brokers[@]}"; do measure "$b"; done
  fi
  if [ "$MODE" != quiet ]; then loaded; fi
done

mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; if (NF) printf (s / NF >= 1000 ? "%.0f" : "%.3g"), s / NF }' <<<"$1"; }
cell() { # values -> "a / b / c (mean)"
  [ -z "$1" ] && { echo -; return; }
  local f
  f=$(awk '{ for (i = 1; i <= NF; i++) printf "%s" ($i >= 1000 ? "%.0f" : "%.3g"), (i > 1 ? " / " : ""), $i }' <<<"$1")
  if [ "$runs" -gt 1 ]; then f="$f ($(mean "$1"))"; fi
  echo "$f"
}
row() { # label measure unit
  local g=${R[gannet,$2]:-} m=${R[mosquitto,$2]:-} ratio=-
  if [ -n "$g" ] && [ -n "$m" ]; then ratio=$(awk -v g="$(mean "$g")" -v m="$(mean "$m")" 'BEGIN{ if (m > 0) printf "%.2f", g/m; else print "-" }'); fi
  printf '| %s (%s) | %s | %s | %s |\n' "$1" "$3" "$(cell "$m")" "$(cell "$g")" "$ratio"
}
echo "runs: $runs, brokers pinned to CPU $BROKER_CPU, bench on CPU $BENCH_CPU, $CLIENTS clients, $COUNT ping-pong messages"
echo "| measure | mosquitto | gannet | gannet/mosquitto |"
echo "|---|---|---|---|"
if [ "$MODE" != loaded ]; then for q in 0 1 2; do
  row "ping-pong QoS $q p50" "q$q.p50" ms
  row "ping-pong QoS $q p99" "q$q.p99" ms
  row "broker CPU per message QoS $q" "q$q.cpu" µs
done; fi
if [ "$MODE" != loaded ]; then
  row "connections/s, clean" clean.rate "/s"
  row "connections/s, persistent" persistent.rate "/s"
  row "reconnect storm of $CLIENTS, clean" clean.storm s
  row "reconnect storm of $CLIENTS, persistent" persistent.storm s
  row "memory per idle connection, RSS" rss KiB
  row "memory per idle connection, \$SYS heap, clean" clean.heap KiB
  row "memory per idle connection, \$SYS heap, persistent" persistent.heap KiB
fi
if [ "$MODE" != quiet ]; then
  for q in 0 1 2; do for shape in pairs fan-in fan-out; do
    row "loaded $shape QoS $q, received" "load.$shape.q$q" msg/s
  done; done
fi
