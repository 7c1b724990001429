#!/bin/bash
# Bridge throughput: Gannet->Gannet and Mosquitto->Mosquitto, QoS $1, 64-byte messages.
# Usage: go build -o /tmp/gannet ./cmd/gannet && GANNET=/tmp/gannet bench/bridge_throughput.sh QOS COUNT_PER_PUBLISHER PUBLISHERS
# (needs mosquitto). Each pair: a local broker bridged (topic bench/# out QOS) to a
# remote one; gannet bench pub publishes on the local, gannet bench sub counts on the
# remote; the report is the subscriber's messages per second and latency.
set -u
GANNET=${GANNET:-gannet}
Q=$1; C=$2; P=$3
D=$(mktemp -d)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
run() { # $1 label, $2 local port, $3 remote port
  $GANNET bench sub -p $3 --filter 'bench/#' -c 1 -C $((C*P)) -q $Q --duration 120s --quiet --json > $D/$1.sub.json &
  SP=$!
  sleep 1
  $GANNET bench pub -p $2 -c $P -C $C -q $Q --duration 120s --quiet --json > $D/$1.pub.json
  wait $SP
  echo "== $1 QoS $Q"; python3 - $D/$1.sub.json <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
def find(d,keys):
    out={}
    for k,v in d.items():
        if isinstance(v,dict): out.update({k+"."+a:b for a,b in find(v,keys).items()})
        elif any(x in k for x in keys): out[k]=v
    return out
print(json.dumps(find(r,["rate","received","p99","p50","msgs","per_s"]),indent=0))
PY
}
# Gannet pair
GR=$(port); GL=$(port)
GANNET_LIMITS_MAX_QUEUED=1000000 $GANNET --listen 127.0.0.1:$GR --store memory --log-level warn 2>$D/gr.log & GRP=$!
cat > $D/gl.yaml <<Y
bridges:
  - name: bench
    addresses: [127.0.0.1:$GR]
    protocol_version: "5"
    notifications: false
    restart_min: 100ms
    topics:
      - pattern: bench/#
        qos: $Q
Y
GANNET_LIMITS_MAX_QUEUED=1000000 $GANNET --listen 127.0.0.1:$GL --store memory --log-level warn --config $D/gl.yaml 2>$D/gl.log & GLP=$!
sleep 2
run gannet $GL $GR
kill $GLP $GRP; wait $GLP $GRP 2>/dev/null
# Mosquitto pair
MR=$(port); ML=$(port)
printf "listener $MR 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n" > $D/mr.conf
printf "listener $ML 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nconnection bench\naddress 127.0.0.1:$MR\ntopic bench/# out $Q\nnotifications false\ncleansession true\n" > $D/ml.conf
mosquitto -c $D/mr.conf 2>/dev/null & MRP=$!
mosquitto -c $D/ml.conf 2>/dev/null & MLP=$!
sleep 2
run mosquitto $ML $MR
kill $MLP $MRP; wait $MLP $MRP 2>/dev/null
rm -rf $D
