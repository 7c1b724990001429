package broker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// C: closeWith appends DISCONNECT and sets closing in two separate wmu
// sections; a concurrent delivery can slip in between, so PUBLISH follows
// DISCONNECT on the wire [MQTT-3.14.4-1] (5.0).
func TestRegressPublishAfterDisconnect(t *testing.T) {
	b := runBroker(t, testOptions())
	bad := 0
	for round := range 200 {
		id := fmt.Sprintf("rv-c-%d", round)
		c := v5Client(t, b, id)
		c.v5Sub(0, packet.Subscription{Filter: "rv/c", QoS: 0})
		var stop atomic.Bool
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					b.Publish("rv/c", []byte("x"), 0, false)
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		b.Disconnect(id, false)
		seenDisc := false
		after := 0
		deadline := time.Now().Add(waitFor)
		for time.Now().Before(deadline) {
			p, err := c.read(time.Until(deadline))
			if err != nil {
				break
			}
			if _, ok := p.(*packet.Disconnect); ok {
				seenDisc = true
				continue
			}
			if seenDisc {
				after++
			}
		}
		stop.Store(true)
		wg.Wait()
		if after > 0 {
			bad++
			t.Logf("round %d: %d packets after DISCONNECT", round, after)
		}
	}
	if bad > 0 {
		t.Errorf("%d of 200 rounds had PUBLISH after DISCONNECT", bad)
	}
}
