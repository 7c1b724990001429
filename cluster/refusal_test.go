package cluster_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// A node that reaches its cluster's majority and still cannot serve a
// CONNECT now (here: the session's read fails, as while JetStream elects
// a leader) refuses it with 0x88 Server unavailable, and names no other
// node: the others meet the same JetStream, and the one it would name may
// be the node cut off from the rest (heard from within the last 3 s).
// Only a node that is leaving, or cut off from the majority, sends the
// client to a live node (0x9C with a Server Reference, 5.0 section 4.11):
// TestPartitionHeals' minority, TestRollingRestart. Before, every 0x88 of
// a clustered node became 0x9C: TestPartitionHeals' majority refused with
// 0x9C while an election ran.
func TestMajorityRefusalNamesNoOtherNode(t *testing.T) {
	nodes := three(t)
	b := nodes[1]
	id := fmt.Sprint("refuse-here-", time.Now().UnixNano()) // a session no node holds yet
	var failing atomic.Bool
	failing.Store(true)
	b.cl.FailLoads(id, failing.Load)
	t.Cleanup(func() { failing.Store(false) })

	cp := &packet.Connect{Version: packet.V5, ClientID: id, KeepAlive: 30}
	cp.Properties.SetUint(packet.PropSessionExpiry, 300) // persistent: its session is read
	r := rawConn(t, b.addr, packet.V5)
	r.send(cp)
	ack, ok := r.read(2 * waitFor).(*packet.Connack)
	if !ok {
		t.Fatal("no CONNACK")
	}
	var others []string
	for _, n := range b.cl.Nodes() {
		if !n.Self {
			others = append(others, n.Address)
		}
	}
	if ack.ReasonCode != packet.ServerUnavailable || ack.Properties.ServerReference != "" {
		t.Fatalf("CONNACK %#x, Server Reference %q (live nodes %v): want 0x88 and no Server Reference from a node that reaches the majority",
			byte(ack.ReasonCode), ack.Properties.ServerReference, others)
	}
	// It serves the client once the read works again.
	failing.Store(false)
	r = rawConn(t, b.addr, packet.V5)
	r.send(cp)
	if ack, ok := r.read(2 * waitFor).(*packet.Connack); !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK after the read works again: %+v", ack)
	}
}
