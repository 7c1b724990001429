package broker

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// A small message is one allocation, topic and payload inside it; a large
// one two. Either way the message owns copies of them.
func TestNewMessageAllocations(t *testing.T) {
	for _, tc := range []struct {
		payload int
		allocs  float64
	}{{0, 1}, {64, 1}, {smallMessage - 7, 1}, {smallMessage - 6, 2}, {4096, 2}} {
		p := &packet.Publish{Topic: "bench/x", Payload: bytes.Repeat([]byte{'p'}, tc.payload), QoS: 1}
		now := time.Now()
		if n := testing.AllocsPerRun(100, func() { newMessage(p, now) }); n != tc.allocs {
			t.Errorf("%d-byte payload: %v allocations, want %v", tc.payload, n, tc.allocs)
		}
		m := newMessage(p, now)
		if len(p.Payload) > 0 {
			p.Payload[0] = 'X' // the message keeps its own copy
		}
		if m.topic != "bench/x" || !bytes.Equal(m.payload, bytes.Repeat([]byte{'p'}, tc.payload)) {
			t.Errorf("%d-byte payload: message has topic %q and payload %q", tc.payload, m.topic, m.payload)
		}
	}
}

// Queueing a delivery of a persistent session in the store allocates
// nothing per delivery once the message's store record exists: the record
// of the entry is reused, and the memory store keeps entries by value.
func TestQueuedDeliveryStoreRecordAllocatesNothing(t *testing.T) {
	opts := DefaultOptions()
	opts.SysInterval = 0
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess := newSession(s, "c")
	sess.stored = true
	m := newMessage(&packet.Publish{Topic: "t", Payload: []byte(strings.Repeat("p", 64)), QoS: 1}, time.Now())
	o := &outbound{msg: m, qos: 1}
	s.storeMessage(m)
	n := testing.AllocsPerRun(100, func() {
		sess.mu.Lock()
		sess.appendLocked(o)
		o.id = 7
		sess.updateLocked(o)
		sess.mu.Unlock()
		if err := s.store.Remove("c", o.seq); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per queued delivery, want 0", n)
	}
	if sess.entryOut.Message != nil {
		t.Error("the reused store record still refers to the message")
	}
}
