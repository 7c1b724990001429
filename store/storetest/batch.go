package storetest

import (
	"github.com/gannet-mqtt/gannet/store"
)

// testBatch checks store.Batcher: a batch's queue entries, retained message
// and inbound identifiers all load back, entries of one client spread over
// several QueueAppends of one batch keep their order and replace earlier
// ones of the same Seq, and a message shared by a batch and later writes
// stays while anything refers to it.
func testBatch(h *harness) {
	if _, ok := h.s.(store.Batcher); !ok {
		h.t.Skip("the store does not implement store.Batcher")
	}
	write := func(b *store.Batch) { h.t.Helper(); h.ok("WriteBatch", h.s.(store.Batcher).WriteBatch(b)) }
	for _, id := range []string{"pub", "a", "b"} {
		h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: id, Version: 4, Expiry: Never}))
	}
	h.ok("SetRetained", h.s.SetRetained(Plain(1, "old/retained", "gone")))
	m := Sample(10, "t/x", "qos 2 message")
	other := Plain(11, "t/y", "other")
	write(&store.Batch{}) // empty: nothing happens
	write(&store.Batch{
		Queues: []store.QueueAppend{
			{ClientID: "a", Entries: []*store.Entry{{Seq: 1, Message: m, QoS: 2}}},
			{ClientID: "b", Entries: []*store.Entry{{Seq: 4, Message: m, QoS: 1, SubIDs: []uint32{7}}}},
			{ClientID: "a", Entries: []*store.Entry{{Seq: 2, Message: other, QoS: 1}, {Seq: 1, Message: m, QoS: 2, PacketID: 9, State: store.EntrySent}}},
		},
		Retained:       m,
		DeleteRetained: "old/retained",
		Inbound:        []store.Inbound{{ClientID: "pub", ID: 300}, {ClientID: "pub", ID: 2}},
	})
	h.check(func(stage string) {
		h.wantQueue(stage, "a", &store.Entry{Seq: 1, Message: m, QoS: 2, PacketID: 9, State: store.EntrySent}, &store.Entry{Seq: 2, Message: other, QoS: 1})
		h.wantQueue(stage, "b", &store.Entry{Seq: 4, Message: m, QoS: 1, SubIDs: []uint32{7}})
		got := h.retained()
		if len(got) != 1 {
			h.t.Errorf("%s: retained topics %v, want [t/x]", stage, keys(got))
		}
		if d := DiffMessage(m, got["t/x"]); d != "" {
			h.t.Errorf("%s: retained t/x: %s", stage, d)
		}
		h.wantInbound(stage, map[string][]uint16{"pub": {2, 300}, "a": nil})
	})
	// The message stays while an entry refers to it, and goes with the last.
	h.ok("Remove", h.s.Remove("a", 1))
	h.check(func(stage string) {
		h.wantQueue(stage, "b", &store.Entry{Seq: 4, Message: m, QoS: 1, SubIDs: []uint32{7}})
	})
	h.ok("Remove", h.s.Remove("b", 4))
	h.ok("Append", h.s.Append("b", &store.Entry{Seq: 5, Message: other, QoS: 1}))
	write(&store.Batch{Queues: []store.QueueAppend{{ClientID: "b", Entries: []*store.Entry{{Seq: 6, Message: m, QoS: 1}}}}})
	h.check(func(stage string) {
		h.wantQueue(stage, "a", &store.Entry{Seq: 2, Message: other, QoS: 1})
		h.wantQueue(stage, "b", &store.Entry{Seq: 5, Message: other, QoS: 1}, &store.Entry{Seq: 6, Message: m, QoS: 1})
	})
	if in, ok := h.s.(store.InboundStore); ok {
		h.ok("RemoveInbound", in.RemoveInbound("pub", 300))
		h.check(func(stage string) { h.wantInbound(stage, map[string][]uint16{"pub": {2}}) })
	}
}

// testRetainedSource checks that a retained message keeps its Source
// (its publisher) across a restart, set alone or in a batch, and that a
// message stored without one does not inherit the earlier one's.
func testRetainedSource(h *harness) {
	src := &store.Source{ClientID: "pub-1", Username: "alice", Listener: "tcp", CertCommonName: "cn"}
	m := Plain(1, "src/a", "one")
	m.Source = src
	h.ok("SetRetained", h.s.SetRetained(m))
	h.ok("SetRetained", h.s.SetRetained(Plain(2, "src/b", "two")))
	if b, ok := h.s.(store.Batcher); ok {
		m3 := Plain(3, "src/c", "three")
		m3.Source = &store.Source{Username: "bob"}
		h.ok("WriteBatch", b.WriteBatch(&store.Batch{Retained: m3}))
	}
	h.check(func(stage string) {
		got := h.retained()
		if g := got["src/a"]; g == nil || g.Source == nil || *g.Source != *src {
			h.t.Errorf("%s: src/a source %+v, want %+v", stage, g.Source, src)
		}
		if g := got["src/b"]; g == nil || g.Source != nil {
			h.t.Errorf("%s: src/b source %+v, want none", stage, g.Source)
		}
		if _, ok := h.s.(store.Batcher); ok {
			if g := got["src/c"]; g == nil || g.Source == nil || g.Source.Username != "bob" {
				h.t.Errorf("%s: src/c source %+v, want user bob", stage, g.Source)
			}
		}
	})
	// Replaced by a message without a source, then deleted: nothing left.
	h.ok("SetRetained", h.s.SetRetained(Plain(4, "src/a", "four")))
	h.ok("DeleteRetained", h.s.DeleteRetained("src/c"))
	h.check(func(stage string) {
		got := h.retained()
		if g := got["src/a"]; g == nil || g.Source != nil {
			h.t.Errorf("%s: src/a replaced by a message without source has source %+v", stage, g.Source)
		}
		if _, ok := got["src/c"]; ok {
			h.t.Errorf("%s: src/c still retained", stage)
		}
	})
}
