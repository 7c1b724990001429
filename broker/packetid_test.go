package broker

import "testing"

// TestAllocIDSkipsInUse checks the packet identifiers of a large window
// against a scan of the window: never one in use [MQTT-2.3.1-2], through
// wrap-around at 65535, acknowledgements out of order and a window
// restored from the store in any order.
func TestAllocIDSkipsInUse(t *testing.T) {
	for _, restored := range []bool{false, true} {
		s := &session{}
		s.nextID = 65000
		if restored {
			for _, id := range []uint16{65010, 3, 65001, 7} {
				s.inflight = append(s.inflight, &outbound{id: id})
			}
			s.nextID = 65010
			s.idsRestored = true
		}
		for step := range 200_000 {
			if len(s.inflight) < 1000 {
				id := s.allocIDLocked()
				if id == 0 {
					t.Fatalf("step %d: identifier 0", step)
				}
				for _, o := range s.inflight {
					if o.id == id {
						t.Fatalf("restored %v, step %d: identifier %d already in use", restored, step, id)
					}
				}
				s.inflight = append(s.inflight, &outbound{id: id})
				continue
			}
			i := 0 // mostly in order, now and then out of order
			if step%7 == 0 {
				i = step % len(s.inflight)
			}
			copy(s.inflight[i:], s.inflight[i+1:])
			s.inflight = s.inflight[:len(s.inflight)-1]
		}
	}
}

// TestAllocIDFullWindow: with every identifier in use but one, acknowledged out of order, the free
// one is found.
func TestAllocIDFullWindow(t *testing.T) {
	s := &session{}
	for range 65535 {
		s.inflight = append(s.inflight, &outbound{id: s.allocIDLocked()})
	}
	s.inflight = append(s.inflight[:100], s.inflight[101:]...) // frees identifier 101
	if id := s.allocIDLocked(); id != 101 {
		t.Fatalf("got identifier %d, want the free one, 101", id)
	}
}
