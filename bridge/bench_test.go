package bridge_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// benchBridge forwards b.N 64-byte messages at qos from a publisher on one
// in-process broker, over a bridge, to a subscriber on another, and
// reports messages per second (at QoS 0, of those that arrived). The publisher keeps up to 1,000 QoS 1
// messages unacknowledged, as `gannet bench pub` does. Profile the bridge
// path with:
//
//	go test -run '^$' -bench BridgeQoS1 -benchmem -cpuprofile /tmp/cpu.out ./bridge
func benchBridge(b *testing.B, qos byte) {
	local, remote := startGannet(b, false), startGannet(b, false)
	m := local.bridges(testBridge("bench", packet.V5, []bridge.Rule{{Pattern: "bench/#", QoS: qos}}, remote.Addr))
	waitState(b, m, "bench", bridge.StateConnected)

	n := int64(b.N)
	var got atomic.Int64
	done := make(chan struct{})
	so := client.DefaultOptions()
	so.Server = "mqtt://" + remote.Addr
	so.ClientID = nextID("bsub")
	so.OnMessage = func(*client.Message) {
		if got.Add(1) == n {
			close(done)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sub, err := client.Dial(ctx, so)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Subscribe(ctx, client.Subscription{Filter: "bench/#", QoS: qos}); err != nil {
		b.Fatal(err)
	}
	po := client.DefaultOptions()
	po.Server = "mqtt://" + local.Addr
	po.ClientID = nextID("bpub")
	pub, err := client.Dial(ctx, po)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	payload := make([]byte, 64)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	const window = 1000
	var waits []func(context.Context) error
	for range b.N {
		if qos == 0 {
			if err := pub.Publish(ctx, "bench/x", payload, client.PublishOptions{}); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if len(waits) == window {
			if err := waits[0](ctx); err != nil {
				b.Fatal(err)
			}
			waits = waits[1:]
		}
		w, err := pub.PublishAsync("bench/x", payload, client.PublishOptions{QoS: qos})
		if err != nil {
			b.Fatal(err)
		}
		waits = append(waits, w)
	}
	for _, w := range waits {
		if err := w(ctx); err != nil {
			b.Fatal(err)
		}
	}
	wait := time.Minute
	if qos == 0 {
		wait = 5 * time.Second // QoS 0 may be dropped on the way (a full write buffer)
	}
	select {
	case <-done:
	case <-time.After(wait):
		if qos > 0 {
			b.Fatalf("%d of %d messages crossed the bridge", got.Load(), n)
		}
	}
	b.ReportMetric(float64(got.Load())/time.Since(start).Seconds(), "msgs/s")
}

func BenchmarkBridgeQoS1(b *testing.B) { benchBridge(b, 1) }
func BenchmarkBridgeQoS0(b *testing.B) { benchBridge(b, 0) }
