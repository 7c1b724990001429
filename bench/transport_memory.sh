#!/usr/bin/env bash
# transport_memory.sh measures memory per idle connection over plain TCP,
# TLS and WebSocket, for Gannet and (when installed) Mosquitto side by
# side, each broker pinned to one core: the RSS delta (/proc/PID/status)
# while CLIENTS connections are held, and the broker's own
# $SYS/broker/heap/current delta as gannet bench conn --memory-topic
# reports it. A fresh broker for each transport and run. The certificate is
# a self-signed one for 127.0.0.1 made with openssl.
#
# Usage: bench/transport_memory.sh [runs]      (from the repository root)
# Environment: CLIENTS (5000), HOLD (hold in seconds once all are up, 6), BROKER_CPU (0),
# BENCH_CPU (1), GANNET (a built gannet binary: default builds one),
# ONLY (gannet or mosquitto), TRANSPORTS (default "tcp tls ws").
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
CLIENTS=${CLIENTS:-5000}
HOLD=${HOLD:-6}
BROKER_CPU=${BROKER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
bpid=
cleanup() {
  [ -n "$bpid" ] && kill "$bpid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${GANNET:-}" ]; then
  go build -o "$tmp/gannet" ./cmd/gannet
  GANNET=$tmp/gannet
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
brokers="gannet mosquitto"
[ -x "$MOSQUITTO" ] || { echo "mosquitto not found (apt-get install -y mosquitto): Gannet only" >&2; brokers=gannet; }
[ -n "${ONLY:-}" ] && brokers=$ONLY

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
# Mosquitto started as root reads its files as the mosquitto user.
chmod a+rx "$tmp"; chmod a+r "$tmp/key.pem" "$tmp/cert.pem"

base=$((20000 + RANDOM % 10000))
declare -A PORT=(
  [gannet,tcp]=$base [gannet,tls]=$((base + 1)) [gannet,ws]=$((base + 2))
  [mosquitto,tcp]=$((base + 3)) [mosquitto,tls]=$((base + 4)) [mosquitto,ws]=$((base + 5))
)
cat >"$tmp/gannet.yaml" <<YAML
listeners:
  - type: tcp
    address: 127.0.0.1:${PORT[gannet,tcp]}
  - type: tls
    address: 127.0.0.1:${PORT[gannet,tls]}
    # Every bench connection comes from 127.0.0.1: the default cap of 64
    # handshakes per source would drop most of the bench's 256 at once.
    max_pending_per_source: -1
    tls:
      cert_file: $tmp/cert.pem
      key_file: $tmp/key.pem
  - type: ws
    address: 127.0.0.1:${PORT[gannet,ws]}
store:
  type: memory
sys:
  interval: 1s
YAML
cat >"$tmp/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
sys_interval 1
listener ${PORT[mosquitto,tcp]} 127.0.0.1
listener ${PORT[mosquitto,tls]} 127.0.0.1
certfile $tmp/cert.pem
keyfile $tmp/key.pem
listener ${PORT[mosquitto,ws]} 127.0.0.1
protocol websockets
CONF

start_broker() { # broker
  case $1 in
    gannet) taskset -c "$BROKER_CPU" "$GANNET" --config "$tmp/gannet.yaml" >"$tmp/gannet.log" 2>&1 & ;;
    mosquitto) taskset -c "$BROKER_CPU" "$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 & ;;
  esac
  bpid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$1,tcp]}") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start" >&2; cat "$tmp/$1.log" >&2; exit 1
}
stop_broker() { kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; bpid=; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

declare -A R
add() { R[$1,$2]="${R[$1,$2]:-} $3"; }

measure() { # broker transport
  local b=$1 t=$2 r0 r1 out hold
  local flags=(--quiet --json --transport "$t" -p "${PORT[$b,$t]}" --keepalive 60
    --memory-topic '$SYS/broker/heap/current' --duration "${HOLD}s" -c "$CLIENTS" -i "$t-")
  [ "$t" = tls ] && flags+=(--cafile "$tmp/cert.pem")
  start_broker "$b"
  sleep 1.5
  r0=$(rss_kib "$bpid")
  taskset -c "$BENCH_CPU" "$GANNET" bench conn "${flags[@]}" >"$tmp/out.json" 2>"$tmp/bench.err" &
  hold=$!
  # RSS once every connection is up (a TLS storm on a busy machine takes
  # far longer than HOLD), read halfway through the hold.
  for _ in $(seq 600); do
    kill -0 "$hold" 2>/dev/null || break
    [ "$(ss -Htn state established "( sport = :${PORT[$b,$t]} )" | wc -l)" -ge "$CLIENTS" ] && break
    sleep 0.5
  done
  sleep $((HOLD / 2))
  r1=$(rss_kib "$bpid")
  wait "$hold" || { echo "$b $t: bench failed" >&2; cat "$tmp/bench.err" >&2; }
  out=$(cat "$tmp/out.json")
  stop_broker
  add "$b" "$t.rss" "$(awk -v a="$r0" -v b="$r1" -v n="$CLIENTS" 'BEGIN{printf "%.2f", (b-a)/n}')"
  add "$b" "$t.heap" "$(jq '(.memory.per_connection_bytes // 0)/1024*100|round/100' <<<"$out")"
  add "$b" "$t.setup" "$(jq '.connections.setup_ns/1e9*100|round/100' <<<"$out")"
  add "$b" "$t.up" "$(jq '.connections.established' <<<"$out")"
}

for _ in $(seq "$runs"); do
  for b in $brokers; do
    for t in ${TRANSPORTS:-tcp tls ws}; do measure "$b" "$t"; done
  done
done

mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; if (NF) printf "%.2f", s/NF}' <<<"$1"; }
echo "memory per idle connection, $CLIENTS connections, KiB (runs, [mean]); connected; setup seconds"
echo "(Mosquitto's \$SYS heap counts only its own allocations, not OpenSSL's or libwebsockets': compare tls and ws by RSS)"
printf '| %-9s | %-7s | %-22s | %-22s | %-24s | %-24s | %-10s | %-11s |\n' transport measure Gannet Mosquitto "Gannet / Mosquitto" "vs Gannet tcp" connected "setup s"
for t in ${TRANSPORTS:-tcp tls ws}; do
  for m in rss heap; do
    g=${R[gannet,$t.$m]:-}; mo=${R[mosquitto,$t.$m]:-}
    gm=$(mean "$g"); mm=$(mean "$mo"); gt=$(mean "${R[gannet,tcp.$m]:-}")
    ratio=$(awk -v a="$gm" -v b="$mm" 'BEGIN{if (b > 0) printf "%.2f", a/b; else print "-"}')
    vs=$(awk -v a="$gm" -v b="$gt" 'BEGIN{if (b > 0) printf "%.2f", a/b; else print "-"}')
    printf '| %-9s | %-7s | %-22s | %-22s | %-24s | %-24s | %-10s | %-11s |\n' "$t" "$m" "${g# } [$gm]" "${mo# } [$mm]" "$ratio" "$vs" \
      "${R[gannet,$t.up]# }/${R[mosquitto,$t.up]:- -}" "${R[gannet,$t.setup]# }/${R[mosquitto,$t.setup]:- -}"
  done
done
