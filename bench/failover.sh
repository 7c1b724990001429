#!/usr/bin/env bash
# failover.sh measures the failover time of a three-node Gannet cluster
# (issue 12) over several kills, and where the time goes. Three `gannet`
# processes on loopback (JetStream, 3 replicas). Each round: a persistent
# client (MQTT 3.1.1, clean session 0, QoS 1) connected to the victim, a
# publisher on a third node sending QoS 1 every 50 ms; the victim is
# killed with SIGKILL, then
#   connected: the client (same identifier, clean session 0) is accepted on
#              a survivor (its claim on the owners bucket is written);
#   served:    it receives there a QoS 1 message published after the kill.
# Then the victim restarts on its data directory, and the next round waits
# until every stream has its three replicas current again. The victim
# turns: n3, n1, n2, n3, ... (VICTIM=random: a node drawn at random).
#
# Per round it also prints what the victim led before the kill (the
# JetStream meta group, the owners bucket, the messages stream), and from
# the survivors' logs, relative to the kill: when NATS noticed the death
# (a survivor's route to the victim closed), when each group got a new
# leader, when a survivor refused the client's CONNECT last (its claim
# could not be written yet), and when a survivor adopted the victim's
# sessions (3 s without its heartbeats).
#
# Usage: bench/failover.sh             (from the repository root)
# Environment: GANNET (a built gannet binary: default builds one from this
# tree), ROUNDS (kills, 6), VICTIM (rotate or random), KEEP (1: keep the
# logs' directory).
# Needs jq and mosquitto_pub/mosquitto_sub (Debian mosquitto-clients).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
for tool in jq mosquitto_pub mosquitto_sub; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y jq mosquitto-clients" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

if [ -z "${GANNET:-}" ]; then
  go build -o "$tmp/gannet" ./cmd/gannet
  GANNET=$tmp/gannet
fi

. bench/cluster-ports.sh # the cwd is the repository (above)
admin=($next_port $((next_port + 1)) $((next_port + 2)))

node_pids=()
start_node() { # i (0-based): node n$((i+1)); logs append
  local i=$1 n=n$(($1 + 1))
  "$GANNET" --listen "127.0.0.1:${mqtt[$i]}" --data-dir "$tmp/$n" --sys-interval 0 \
    --admin-address "127.0.0.1:${admin[$i]}" \
    --cluster-name fo --node-name "$n" --cluster-listen "127.0.0.1:${route[$i]}" \
    --cluster-routes "$routes" >>"$tmp/$n.log" 2>&1 &
  node_pids[$i]=$!
  pids+=("$!")
  wait_port "${mqtt[$i]}" "$!" "$tmp/$n.log"
}

status() { # i: the JSON status from node i ("" if it cannot answer)
  "$GANNET" cluster status --json --admin "http://127.0.0.1:${admin[$1]}" 2>/dev/null || true
}

# healthy waits until node i reports every node alive and every stream
# with a leader and no lagging replica.
healthy() { # i
  local s
  for _ in $(seq 240); do
    s=$(status "$1")
    if [ -n "$s" ] && jq -e '.jetstream_ready and (.nodes | length == 3) and all(.nodes[]; .alive)
        and (.streams | length > 0) and all(.streams[]; (.leader // "") != "" and .lagging == 0 and (.peers | length == 3))' <<<"$s" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.25
  done
  echo "the cluster did not become healthy" >&2; tail -20 "$tmp"/n*.log >&2; exit 1
}

ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b - a}'; }

# first_log prints the time (s since t0) of the first line matching re in
# the survivors' logs after t0, or "-".
first_log() { # t0 re logs...
  local t0=$1 re=$2 best="" ts e
  shift 2
  for f in "$@"; do
    while IFS= read -r ts; do
      e=$(date -d "$ts" +%s.%N)
      if awk -v e="$e" -v t="$t0" 'BEGIN{exit !(e >= t)}'; then
        if [ -z "$best" ] || awk -v e="$e" -v b="$best" 'BEGIN{exit !(e < b)}'; then best=$e; fi
        break
      fi
    done < <(grep -E "$re" "$f" | sed -n 's/^time=\([^ ]*\).*/\1/p')
  done
  if [ -z "$best" ]; then echo -; else ms "$t0" "$best"; fi
}

# last_log prints the time (s since t0) of the last line matching re in
# the survivors' logs between t0 and t1, or "-".
last_log() { # t0 t1 re logs...
  local t0=$1 t1=$2 re=$3 best="" ts e
  shift 3
  for f in "$@"; do
    while IFS= read -r ts; do
      e=$(date -d "$ts" +%s.%N)
      if awk -v e="$e" -v a="$t0" -v b="$t1" 'BEGIN{exit !(e >= a && e <= b)}'; then
        if [ -z "$best" ] || awk -v e="$e" -v b="$best" 'BEGIN{exit !(e > b)}'; then best=$e; fi
      fi
    done < <(grep -E "$re" "$f" | sed -n 's/^time=\([^ ]*\).*/\1/p')
  done
  if [ -z "$best" ]; then echo -; else ms "$t0" "$best"; fi
}

for i in 0 1 2; do start_node "$i"; done
healthy 0

echo "| round | victim | it led | route closed s | new owners leader s | new messages leader s | new meta leader s | last claim refused s | connected s | served s | adopted s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
conn_all=()
served_all=()
for r in $(seq "$ROUNDS"); do
  v=$(((r + 1) % 3)) # n3, n1, n2, ...
  [ "${VICTIM:-rotate}" = random ] && v=$((RANDOM % 3))
  t=$(((v + 1) % 3))  # the client reconnects here
  p=$(((v + 2) % 3))  # the publisher
  healthy "$t"
  s=$(status "$t")
  vn=n$((v + 1))
  led=$(jq -r --arg v "$vn" '[(if .meta_leader == $v then "meta" else empty end),
      (.streams[] | select((.leader // "") == $v) | .name | sub("^(KV_gannet_fo_|GANNET_fo_)"; ""))] | join(",")' <<<"$s")
  id=failover-$r
  mosquitto_sub -p "${mqtt[$v]}" -i "$id" -c -t "fo/$r" -q 1 >/dev/null 2>&1 &
  sub=$!
  pids+=("$sub")
  sleep 0.5
  (while :; do mosquitto_pub -p "${mqtt[$p]}" -t "fo/$r" -q 1 -m tick >/dev/null 2>&1 || true; sleep 0.05; done) &
  ticker=$!
  pids+=("$ticker")
  sleep 0.5
  t0=$(date +%s.%N)
  kill -9 "${node_pids[$v]}"
  wait "${node_pids[$v]}" 2>/dev/null || true
  { kill "$sub" && wait "$sub"; } 2>/dev/null || true
  # Connected: a CONNECT with the same identifier (clean session 0, so the
  # session stays) accepted on the survivor.
  until mosquitto_pub -p "${mqtt[$t]}" -i "$id" -c -t fo/probe -q 0 -m x >/dev/null 2>&1; do sleep 0.05; done
  tc=$(date +%s.%N)
  # Served: a QoS 1 message received there.
  until mosquitto_sub -p "${mqtt[$t]}" -i "$id" -c -t "fo/$r" -q 1 -C 1 -W 2 >/dev/null 2>&1; do sleep 0.05; done
  t1=$(date +%s.%N)
  { kill "$ticker" && wait "$ticker"; } 2>/dev/null || true
  sleep 5 # let the adoption and the elections log
  logs=("$tmp/n$((t + 1)).log" "$tmp/n$((p + 1)).log")
  own=$(first_log "$t0" "new stream leader for '.* > KV_gannet_fo_owners'" "${logs[@]}")
  msg=$(first_log "$t0" "new stream leader for '.* > GANNET_fo_MESSAGES'" "${logs[@]}")
  meta=$(first_log "$t0" "Self is new JetStream cluster metadata leader" "${logs[@]}")
  adopted=$(first_log "$t0" "adopted the persistent sessions of a dead node" "${logs[@]}")
  closed=$(first_log "$t0" "Router connection closed: (Client Closed|Read Error).*Remote: $vn," "${logs[@]}")
  refused=$(last_log "$t0" "$tc" "refusing CONNECT.*client=$id " "${logs[@]}")
  conn_all+=("$(ms "$t0" "$tc")")
  served_all+=("$(ms "$t0" "$t1")")
  echo "| $r | $vn | ${led:-nothing} | $closed | $own | $msg | $meta | $refused | $(ms "$t0" "$tc") | $(ms "$t0" "$t1") | $adopted |"
  start_node "$v"
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END{printf "min %.2f, median %.2f, mean %.2f, max %.2f", a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), s/NR, a[NR]}'; }
echo
echo "connected: $(stats "${conn_all[@]}") s over $ROUNDS kills"
echo "served:    $(stats "${served_all[@]}") s over $ROUNDS kills"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
