package broker_test

import (
	"sync"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// keepingObserver keeps every event, as the webhook engine does.
type keepingObserver struct {
	mu     sync.Mutex
	events []broker.Event
}

func (o *keepingObserver) Observe(e *broker.Event) {
	o.mu.Lock()
	o.events = append(o.events, *e)
	o.mu.Unlock()
}

// An event's strings stay valid after Observe returns: the filter of an
// UNSUBSCRIBE, a slice of the read buffer, must not change when the same
// connection's next packet is read into that buffer (the webhook test saw
// client.unsubscribed name another client's filter).
func TestObserverEventOutlivesReadBuffer(t *testing.T) {
	b := runBroker(t, testOptions())
	o := &keepingObserver{}
	defer b.AddObserver(o)()
	c, _ := connectOK(t, b.Addr, connectPacket("alias"))
	c.sub("t/#", 0)
	c.send(&packet.Unsubscribe{PacketID: c.id(), Filters: []string{"t/#"}})
	expectPacket[*packet.Unsuback](c)
	for range 20 { // overwrite the read buffer with filters of the same length
		c.sub("q/#", 0)
	}
	c.sync()
	o.mu.Lock()
	defer o.mu.Unlock()
	found := false
	for _, e := range o.events {
		if e.Kind == broker.EventUnsubscribed {
			found = true
			if e.Topic != "t/#" {
				t.Fatalf("unsubscribed event names %q after later packets, want %q", e.Topic, "t/#")
			}
		}
	}
	if !found {
		t.Fatal("no unsubscribed event")
	}
}
