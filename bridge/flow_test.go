package bridge_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// TestBridgeRemoteReceiveMaximum: a 5.0 remote with Receive Maximum 2
// disconnects a client with more QoS 2 messages unacknowledged (0x93); the
// bridge keeps within it, so 200 messages cross on one connection.
func TestBridgeRemoteReceiveMaximum(t *testing.T) {
	local := startGannet(t, false)
	remote := startGannetWith(t, false, func(o *broker.Options) { o.ReceiveMaximum = 2 })
	m := local.bridges(testBridge("rm", packet.V5, []bridge.Rule{{Pattern: "r/#", QoS: 2}}, remote.Addr))
	waitState(t, m, "rm", bridge.StateConnected)
	rsub := subscribe(t, remote.Addr, "r/#", 2)
	p := connectPaho(t, local.Addr, "producer", true, nil)
	var last mqtt.Token
	for i := range 200 {
		last = p.Publish("r/x", 2, false, fmt.Sprint(i))
	}
	last.WaitTimeout(waitFor)
	for i := range 200 {
		if got := rsub.next(); got.Payload != fmt.Sprint(i) {
			t.Fatalf("message %d: %+v", i, got)
		}
	}
	if c := bridgeInfo(m, "rm").Connects; c != 1 {
		t.Fatalf("connects %d: the remote disconnected the bridge", c)
	}
}

// TestBridgeRemoteMaximumQoS: a remote with Maximum QoS 1 gets QoS 2
// messages at QoS 1 instead of refusing them.
func TestBridgeRemoteMaximumQoS(t *testing.T) {
	local := startGannet(t, false)
	remote := startGannetWith(t, false, func(o *broker.Options) { o.MaximumQoS = 1 })
	m := local.bridges(testBridge("mq", packet.V5, []bridge.Rule{{Pattern: "q/#", QoS: 2}}, remote.Addr))
	waitState(t, m, "mq", bridge.StateConnected)
	rsub := subscribe(t, remote.Addr, "q/#", 2)
	publish(t, local.Addr, "q/1", "two", 2, false)
	if got := rsub.next(); got.Payload != "two" || got.QoS != 1 {
		t.Fatalf("got %+v, want QoS 1", got)
	}
	if d := bridgeInfo(m, "mq").Dropped; d != 0 {
		t.Fatalf("dropped %d", d)
	}
}

// gateStore is a memory store whose Sync waits while the gate is closed:
// the broker acknowledges nothing it stored until then.
type gateStore struct {
	*memory.Store
	mu   sync.Mutex
	open chan struct{}
}

func (s *gateStore) Sync() error {
	s.mu.Lock()
	ch := s.open
	s.mu.Unlock()
	<-ch
	return nil
}

var _ store.Syncer = (*gateStore)(nil)

// TestBridgeInboundAckAfterDurable: a message from the remote is
// acknowledged to the remote only once the local broker made it durable
// (its Sync returned).
func TestBridgeInboundAckAfterDurable(t *testing.T) {
	gs := &gateStore{Store: memory.New(), open: make(chan struct{})}
	close(gs.open)
	local := startGannetWith(t, false, func(o *broker.Options) { o.Store = gs })
	remote := startGannet(t, false)
	cfg := testBridge("in", packet.V5, []bridge.Rule{{Pattern: "i/#", Direction: bridge.In, QoS: 1}}, remote.Addr)
	m := local.bridges(cfg)
	waitState(t, m, "in", bridge.StateConnected)
	gate := make(chan struct{})
	gs.mu.Lock()
	gs.open = gate
	gs.mu.Unlock()
	publish(t, remote.Addr, "i/1", "x", 1, false)
	time.Sleep(quiet)
	if ci, _, _ := remote.Srv.Client("bridge-in"); ci.Inflight != 1 {
		t.Fatalf("the remote has %d messages unacknowledged by the bridge, want 1 while the local store has not synced", ci.Inflight)
	}
	close(gate)
	eventually(t, "the acknowledgement", func() bool {
		ci, _, _ := remote.Srv.Client("bridge-in")
		return ci.Inflight == 0
	})
	if r := bridgeInfo(m, "in").Received; r != 1 {
		t.Fatalf("received %d", r)
	}
}
