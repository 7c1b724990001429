# Sourced by bench/cluster.sh and bench/failover.sh: loopback ports for a
# three-node cluster and a wait for a broker's port.

base=$((10000 + RANDOM % 20000)) # below the ephemeral ports (32768-60999)
mqtt=($base $((base + 1)) $((base + 2)))
route=($((base + 3)) $((base + 4)) $((base + 5)))
routes=nats://127.0.0.1:${route[0]},nats://127.0.0.1:${route[1]},nats://127.0.0.1:${route[2]}
next_port=$((base + 6)) # the first port the sourcing script may use for itself

wait_port() { # port pid log
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "broker on port $1 did not start" >&2; tail -20 "$3" >&2; exit 1
}
