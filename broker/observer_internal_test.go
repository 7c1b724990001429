package broker

import (
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

type countObserver struct{ kinds []EventKind }

func (c *countObserver) Observe(e *Event) { c.kinds = append(c.kinds, e.Kind) }

// Without an observer the event points cost no allocation; with one they
// report, and a removed observer hears nothing more.
func TestObserverPointsAllocateNothingWhenUnobserved(t *testing.T) {
	opts := DefaultOptions()
	opts.SysInterval = 0
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &conn{srv: s, nc: a, clientID: "c"}
	sess := newSession(s, "c")
	m := newMessage(&packet.Publish{Topic: "t", Payload: []byte("p"), QoS: 1}, time.Now())
	all := func() {
		s.emitMessage(EventDelivered, m, "c", "", "", 1)
		s.emitPublished(m, sess, EventPublished, "")
		s.emitClient(EventSubscribed, c, "t/#", 1, "", "")
		s.emitSession(EventSessionCreated, sess, "")
		s.emitPacket(EventPacketIn, c, &packet.Pingreq{})
	}
	if n := testing.AllocsPerRun(100, all); n != 0 {
		t.Errorf("%v allocations per round of events without an observer, want 0", n)
	}
	o := &countObserver{}
	remove := s.AddObserver(o)
	all()
	if len(o.kinds) != 4 { // no packet events for a plain Observer
		t.Errorf("observer heard %v", o.kinds)
	}
	remove()
	if s.observers.Load() != nil {
		t.Error("observers left after the last was removed")
	}
	all()
	if len(o.kinds) != 4 {
		t.Errorf("a removed observer heard %v", o.kinds)
	}
}

func TestEventKindNames(t *testing.T) {
	for k := EventConnected; k <= EventPacketOut; k++ {
		got, ok := ParseEventKind(k.String())
		if !ok || got != k {
			t.Errorf("%d: %q parses as %d, %v", k, k.String(), got, ok)
		}
	}
	if _, ok := ParseEventKind("unknown"); ok {
		t.Error("unknown parsed")
	}
}
