package bench

import (
	"context"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// pingpong sends one message at a time and measures each one's latency, at
// every QoS and both protocol versions.
func TestPingPong(t *testing.T) {
	b := runBroker(t, broker.DefaultOptions())
	for _, v := range []byte{packet.V311, packet.V5} {
		for qos := range byte(3) {
			cfg := DefaultConfig()
			cfg.Scenario, cfg.Addr, cfg.Version, cfg.QoS = PingPong, b.addr, v, qos
			cfg.Count, cfg.Duration = 200, 0
			cfg.Topic = "pp/%i"
			r, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := r.Messages
			if m.Sent != 200 || m.Received != 200 || r.Latency == nil || r.Latency.Samples != 200 || len(r.Errors) > 0 {
				t.Fatalf("v%d QoS %d: sent %d received %d latency %+v errors %v", v, qos, m.Sent, m.Received, r.Latency, r.Errors)
			}
			if qos > 0 && m.Acked != 200 {
				t.Fatalf("v%d QoS %d: %d acknowledged, want 200", v, qos, m.Acked)
			}
		}
	}
}

// A reconnect storm cuts every connection and reconnects them all; with
// persistent sessions each finds its session again. The memory topic gives
// a figure per connection.
func TestConnReconnectAndMemory(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.SysInterval = 100 * time.Millisecond
	b := runBroker(t, opts)
	cfg := DefaultConfig()
	cfg.Scenario, cfg.Addr, cfg.Clients, cfg.Duration = Conn, b.addr, 50, 300*time.Millisecond
	cfg.Persistent, cfg.Reconnect = true, true
	cfg.MemoryTopic = "$SYS/broker/heap/current"
	r, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connections.Established != 50 || r.Reconnect == nil || r.Reconnect.Established != 50 || r.Reconnect.SessionPresent != 50 {
		t.Fatalf("connections %+v, reconnect %+v", r.Connections, r.Reconnect)
	}
	if r.Memory == nil || r.Memory.Before == 0 || r.Memory.After == 0 {
		t.Fatalf("memory %+v, errors %v", r.Memory, r.Errors)
	}
}
