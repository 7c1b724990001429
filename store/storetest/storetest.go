// Package storetest is the conformance suite every store.Store passes:
// store/memory and store/pebble run it from their tests, and so should any
// other implementation.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, open, reopen)
//	}
//
// open returns an empty store for one subtest. reopen, when not nil, closes
// old and returns the store opened again on the same data, so that every
// check also runs on what survived the restart; a store that lives in
// memory may pass nil or return old itself. The suite closes the store it
// holds at the end of each subtest.
//
// The contract it checks, beyond the interfaces' comments: a Message.ID
// names one content (entries that refer to the same ID load back with
// equal messages); Remove of an entry not queued and DeleteSession or
// DeleteRetained of something not stored are not errors; Update of an
// entry not queued returns an error that wraps store.ErrNotFound; an error
// from a Load callback stops the Load and is returned; a LoadQueue
// callback may write to the store; a store that implements
// store.InboundStore returns the identifiers with the session, which
// SaveSession keeps and DeleteSession removes.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// Never is the Session.Expiry the broker stores for a session that is kept
// until a clean start ends it.
const Never = time.Duration(math.MaxInt64)

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	tests := []struct {
		name string
		fn   func(h *harness)
	}{
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionReplace", testSessionReplace},
		{"DeleteSession", testDeleteSession},
		{"QueueOrder", testQueueOrder},
		{"QueueEntryFields", testQueueEntryFields},
		{"QueueUpdateRemove", testQueueUpdateRemove},
		{"QueueUpdateUnknown", testQueueUpdateUnknown},
		{"QueueClientIDPrefixes", testQueueClientIDPrefixes},
		{"SharedMessage", testSharedMessage},
		{"SharedMessageAcrossReopen", testSharedMessageAcrossReopen},
		{"MessageRoundTrip", testMessageRoundTrip},
		{"Retained", testRetained},
		{"CallbackError", testCallbackError},
		{"CallbackWrites", testCallbackWrites},
		{"Inbound", testInbound},
		{"Batch", testBatch},
		{"RetainedSource", testRetainedSource},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{t: t, s: open(t), reopen: reopen}
			defer func() {
				if err := h.s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.fn(h)
		})
	}
}

// harness holds the store under test and reopens it.
type harness struct {
	t      *testing.T
	s      store.Store
	reopen func(t *testing.T, old store.Store) store.Store
}

// check runs fn on the store, then again after a reopen when the store
// can be reopened.
func (h *harness) check(fn func(stage string)) {
	h.t.Helper()
	fn("before reopen")
	if h.reopen != nil {
		h.s = h.reopen(h.t, h.s)
		fn("after reopen")
	}
}

// cycle reopens the store when it can be reopened.
func (h *harness) cycle() {
	h.t.Helper()
	if h.reopen != nil {
		h.s = h.reopen(h.t, h.s)
	}
}

func (h *harness) ok(op string, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", op, err)
	}
}

func (h *harness) sessions() map[string]*store.Session {
	h.t.Helper()
	got := make(map[string]*store.Session)
	h.ok("LoadSessions", h.s.LoadSessions(func(s *store.Session) error {
		if _, dup := got[s.ClientID]; dup {
			h.t.Errorf("LoadSessions returned session %q twice", s.ClientID)
		}
		got[s.ClientID] = s
		return nil
	}))
	return got
}

func (h *harness) queue(clientID string) []*store.Entry {
	h.t.Helper()
	var got []*store.Entry
	h.ok("LoadQueue "+clientID, h.s.LoadQueue(clientID, func(e *store.Entry) error {
		got = append(got, e)
		return nil
	}))
	return got
}

func (h *harness) retained() map[string]*store.Message {
	h.t.Helper()
	got := make(map[string]*store.Message)
	h.ok("LoadRetained", h.s.LoadRetained(func(m *store.Message) error {
		if _, dup := got[m.Topic]; dup {
			h.t.Errorf("LoadRetained returned topic %q twice", m.Topic)
		}
		got[m.Topic] = m
		return nil
	}))
	return got
}

// wantQueue checks the client's queue holds want, in order.
func (h *harness) wantQueue(stage, clientID string, want ...*store.Entry) {
	h.t.Helper()
	got := h.queue(clientID)
	if len(got) != len(want) {
		h.t.Fatalf("%s: queue %q has %d entries %v, want %d %v", stage, clientID, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		if d := DiffEntry(want[i], got[i]); d != "" {
			h.t.Errorf("%s: queue %q entry %d: %s", stage, clientID, i, d)
		}
	}
}

func seqs(es []*store.Entry) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

// Sample returns a message with every field set, properties included.
func Sample(id uint64, topic string, payload string) *store.Message {
	m := &store.Message{
		ID:      id,
		Topic:   topic,
		Payload: []byte(payload),
		QoS:     1,
		Created: time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		Expiry:  time.Date(2025, 3, 14, 16, 9, 26, 535897932, time.UTC),
	}
	p := &m.Properties
	p.SetUint(packet.PropPayloadFormat, 1)
	p.SetUint(packet.PropMessageExpiry, 3600)
	p.SetString(packet.PropContentType, "application/json")
	p.SetString(packet.PropResponseTopic, "reply/"+topic)
	p.SetBinary(packet.PropCorrelationData, []byte{0, 1, 2, 0xff})
	p.User = []packet.UserProperty{{Key: "k", Value: "2"}, {Key: "a", Value: "1"}, {Key: "k", Value: "1"}, {Key: "", Value: ""}}
	p.SubscriptionIDs = []uint32{7, 268435455}
	return m
}

// Plain returns a message with no properties and no times.
func Plain(id uint64, topic, payload string) *store.Message {
	return &store.Message{ID: id, Topic: topic, Payload: []byte(payload), QoS: 1}
}

func testSessionRoundTrip(h *harness) {
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	want := []*store.Session{
		{ClientID: "v5", Version: 5, Expiry: 90 * time.Second, Disconnected: time.Date(2024, 2, 29, 23, 59, 59, 999999999, loc),
			Subscriptions: []store.Subscription{
				{Subscription: packet.Subscription{Filter: "a/+/c", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}, ID: 268435455},
				{Subscription: packet.Subscription{Filter: "$share/g/x/#", QoS: 1, RetainHandling: 1}, ID: 1},
				{Subscription: packet.Subscription{Filter: "#", QoS: 0}},
				{Subscription: packet.Subscription{Filter: "ünï/cødé/ドメイン", QoS: 1, NoLocal: true}},
			}},
		{ClientID: "never", Version: 4, Expiry: Never, Owner: "user:alice"},
		{ClientID: "anonymous", Version: 4, Expiry: Never, Owner: "anonymous", Subscriptions: []store.Subscription{
			{Subscription: packet.Subscription{Filter: "a", QoS: 1}},
		}},
		{ClientID: "connected", Version: 3, Expiry: 0, Subscriptions: []store.Subscription{
			{Subscription: packet.Subscription{Filter: "only", QoS: 1}},
		}},
		{ClientID: "with/slash", Version: 5, Expiry: time.Duration(math.MaxUint32) * time.Second, Disconnected: time.Unix(0, 0)},
		{ClientID: "", Version: 5, Expiry: time.Nanosecond},
		{ClientID: strings.Repeat("x", 1000), Version: 5, Expiry: time.Hour},
	}
	for _, s := range want {
		h.ok("SaveSession "+s.ClientID, h.s.SaveSession(s))
	}
	h.check(func(stage string) {
		got := h.sessions()
		if len(got) != len(want) {
			h.t.Errorf("%s: %d sessions, want %d", stage, len(got), len(want))
		}
		for _, w := range want {
			g, ok := got[w.ClientID]
			if !ok {
				h.t.Errorf("%s: session %q missing", stage, w.ClientID)
				continue
			}
			if d := DiffSession(w, g); d != "" {
				h.t.Errorf("%s: session %q: %s", stage, w.ClientID, d)
			}
		}
	})
}

func testSessionReplace(h *harness) {
	sub := func(f string) store.Subscription {
		return store.Subscription{Subscription: packet.Subscription{Filter: f, QoS: 1}}
	}
	h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: "c", Version: 5, Expiry: time.Hour,
		Subscriptions: []store.Subscription{sub("a"), sub("b"), sub("c")}}))
	h.cycle()
	want := &store.Session{ClientID: "c", Version: 4, Expiry: Never, Disconnected: time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC),
		Subscriptions: []store.Subscription{sub("b")}}
	h.ok("SaveSession", h.s.SaveSession(want))
	h.check(func(stage string) {
		got := h.sessions()
		if len(got) != 1 {
			h.t.Fatalf("%s: %d sessions, want 1", stage, len(got))
		}
		if d := DiffSession(want, got["c"]); d != "" {
			h.t.Errorf("%s: replaced session: %s", stage, d)
		}
	})
}

func testDeleteSession(h *harness) {
	m := Plain(1, "t", "p")
	for i, id := range []string{"gone", "kept"} {
		h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: id, Version: 5, Expiry: Never}))
		h.ok("Append", h.s.Append(id, &store.Entry{Seq: 1, Message: m, QoS: 1}, &store.Entry{Seq: 2, Message: Plain(uint64(2+i), "u", id), QoS: 1}))
	}
	h.ok("DeleteSession", h.s.DeleteSession("gone"))
	h.ok("DeleteSession of an unknown session", h.s.DeleteSession("unknown"))
	h.check(func(stage string) {
		got := h.sessions()
		if _, ok := got["gone"]; ok || len(got) != 1 {
			h.t.Errorf("%s: sessions after DeleteSession(gone): %v, want only kept", stage, keys(got))
		}
		h.wantQueue(stage, "gone")
		h.wantQueue(stage, "kept", &store.Entry{Seq: 1, Message: m, QoS: 1}, &store.Entry{Seq: 2, Message: Plain(3, "u", "kept"), QoS: 1})
	})
	// A session of the same name starts with an empty queue.
	h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: "gone", Version: 5}))
	h.ok("Append", h.s.Append("gone", &store.Entry{Seq: 1, Message: Plain(4, "v", "new"), QoS: 2}))
	h.check(func(stage string) {
		h.wantQueue(stage, "gone", &store.Entry{Seq: 1, Message: Plain(4, "v", "new"), QoS: 2})
	})
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func testQueueOrder(h *harness) {
	// Sequence numbers across byte boundaries, appended out of order and
	// over several calls: LoadQueue returns them by Seq.
	order := []uint64{256, 1, 1 << 32, 255, 2, 1<<64 - 1, 65536, 3}
	entries := make(map[uint64]*store.Entry)
	for i, seq := range order {
		e := &store.Entry{Seq: seq, Message: Plain(uint64(i+1), "t", fmt.Sprint(seq)), QoS: 1}
		entries[seq] = e
	}
	h.ok("Append", h.s.Append("c", entries[256]))
	h.ok("Append", h.s.Append("c", entries[1], entries[1<<32], entries[255]))
	h.cycle()
	h.ok("Append", h.s.Append("c", entries[2], entries[1<<64-1], entries[65536], entries[3]))
	sorted := slices.Clone(order)
	slices.Sort(sorted)
	var want []*store.Entry
	for _, seq := range sorted {
		want = append(want, entries[seq])
	}
	h.check(func(stage string) { h.wantQueue(stage, "c", want...) })
	h.check(func(stage string) { h.wantQueue(stage, "unknown") })
}

func testQueueEntryFields(h *harness) {
	want := []*store.Entry{
		{Seq: 1, Message: Sample(10, "a", "one"), QoS: 1, Retain: true, PacketID: 65535, State: store.EntrySent, SubIDs: []uint32{1, 268435455, 3}},
		{Seq: 2, Message: Sample(11, "b", ""), QoS: 2, PacketID: 1, State: store.EntryReleased},
		{Seq: 3, Message: nil, QoS: 2, PacketID: 9, State: store.EntryReleased},
		{Seq: 4, Message: Plain(12, "c", "x"), QoS: 0, State: store.EntryQueued},
	}
	h.ok("Append", h.s.Append("c", want...))
	h.check(func(stage string) { h.wantQueue(stage, "c", want...) })
}

func testQueueUpdateRemove(h *harness) {
	m1, m2, m3 := Plain(1, "t", "1"), Plain(2, "t", "2"), Plain(3, "t", "3")
	e1 := &store.Entry{Seq: 1, Message: m1, QoS: 1}
	e2 := &store.Entry{Seq: 2, Message: m2, QoS: 2}
	e3 := &store.Entry{Seq: 3, Message: m3, QoS: 1}
	h.ok("Append", h.s.Append("c", e1, e2, e3))
	h.cycle()

	u1 := &store.Entry{Seq: 1, Message: m1, QoS: 1, PacketID: 7, State: store.EntrySent}
	u2 := &store.Entry{Seq: 2, Message: m2, QoS: 2, PacketID: 8, State: store.EntrySent, SubIDs: []uint32{4}}
	h.ok("Update", h.s.Update("c", u1))
	h.ok("Update", h.s.Update("c", u2))
	h.check(func(stage string) { h.wantQueue(stage, "c", u1, u2, e3) })

	u2b := &store.Entry{Seq: 2, Message: m2, QoS: 2, PacketID: 8, State: store.EntryReleased}
	h.ok("Update", h.s.Update("c", u2b))
	h.ok("Remove", h.s.Remove("c", 1))
	h.check(func(stage string) { h.wantQueue(stage, "c", u2b, e3) })

	// The entry no longer needs its message.
	u2c := &store.Entry{Seq: 2, QoS: 2, PacketID: 8, State: store.EntryReleased}
	h.ok("Update", h.s.Update("c", u2c))
	h.ok("Remove", h.s.Remove("c", 3))
	h.ok("Remove of a removed entry", h.s.Remove("c", 3))
	h.ok("Remove from an unknown queue", h.s.Remove("unknown", 1))
	h.check(func(stage string) { h.wantQueue(stage, "c", u2c) })

	h.ok("Remove", h.s.Remove("c", 2))
	h.check(func(stage string) { h.wantQueue(stage, "c") })
}

func testQueueUpdateUnknown(h *harness) {
	h.ok("Append", h.s.Append("c", &store.Entry{Seq: 1, Message: Plain(1, "t", "x"), QoS: 1}))
	h.check(func(stage string) {
		e := &store.Entry{Seq: 2, Message: Plain(1, "t", "x"), QoS: 1, State: store.EntrySent}
		if err := h.s.Update("c", e); !errors.Is(err, store.ErrNotFound) {
			h.t.Errorf("%s: Update of an unknown seq: %v, want ErrNotFound", stage, err)
		}
		if err := h.s.Update("other", &store.Entry{Seq: 1, QoS: 1}); !errors.Is(err, store.ErrNotFound) {
			h.t.Errorf("%s: Update in an unknown queue: %v, want ErrNotFound", stage, err)
		}
		h.ok("Remove", h.s.Remove("c", 1))
		if err := h.s.Update("c", &store.Entry{Seq: 1, QoS: 1}); !errors.Is(err, store.ErrNotFound) {
			h.t.Errorf("%s: Update of a removed entry: %v, want ErrNotFound", stage, err)
		}
		h.wantQueue(stage, "c")
		h.wantQueue(stage, "other")
		h.ok("Append", h.s.Append("c", &store.Entry{Seq: 1, Message: Plain(1, "t", "x"), QoS: 1}))
	})
}

// Client identifiers that are prefixes of one another keep apart queues.
func testQueueClientIDPrefixes(h *harness) {
	ids := []string{"a", "a/", "a/b", "ab", "a\x00", "", "a\xff"}
	for i, id := range ids {
		for seq := uint64(1); seq <= 3; seq++ {
			h.ok("Append", h.s.Append(id, &store.Entry{Seq: seq, Message: Plain(uint64(i*10)+seq, id, fmt.Sprint(seq)), QoS: 1}))
		}
	}
	h.ok("DeleteSession", h.s.DeleteSession("a"))
	h.ok("Remove", h.s.Remove("a/", 2))
	h.check(func(stage string) {
		for i, id := range ids {
			var want []*store.Entry
			for seq := uint64(1); seq <= 3; seq++ {
				if id == "a" || id == "a/" && seq == 2 {
					continue
				}
				want = append(want, &store.Entry{Seq: seq, Message: Plain(uint64(i*10)+seq, id, fmt.Sprint(seq)), QoS: 1})
			}
			h.wantQueue(stage, id, want...)
		}
	})
}

// Entries of several sessions that refer to the same message load back
// pointing to messages with equal content, whatever happens to the others.
func testSharedMessage(h *harness) {
	m := Sample(42, "shared/topic", strings.Repeat("payload ", 100))
	other := Plain(43, "other", "o")
	h.ok("Append", h.s.Append("a", &store.Entry{Seq: 1, Message: m, QoS: 1}))
	h.ok("Append", h.s.Append("b", &store.Entry{Seq: 1, Message: m, QoS: 2, SubIDs: []uint32{1}}, &store.Entry{Seq: 2, Message: other, QoS: 1}))
	h.ok("Append", h.s.Append("c", &store.Entry{Seq: 5, Message: m, QoS: 1}, &store.Entry{Seq: 6, Message: m, QoS: 1, Retain: true}))
	h.ok("Append", h.s.Append("d", &store.Entry{Seq: 1, Message: m, QoS: 1}))
	h.check(func(stage string) {
		for _, id := range []string{"a", "b", "c", "d"} {
			for _, e := range h.queue(id) {
				if e.Message.ID == m.ID {
					if d := DiffMessage(m, e.Message); d != "" {
						h.t.Errorf("%s: queue %q seq %d: %s", stage, id, e.Seq, d)
					}
				}
			}
		}
	})
	h.ok("Remove", h.s.Remove("a", 1))
	h.ok("DeleteSession", h.s.DeleteSession("b"))
	h.ok("Update", h.s.Update("d", &store.Entry{Seq: 1, Message: other, QoS: 1}))
	h.check(func(stage string) {
		h.wantQueue(stage, "a")
		h.wantQueue(stage, "b")
		h.wantQueue(stage, "c", &store.Entry{Seq: 5, Message: m, QoS: 1}, &store.Entry{Seq: 6, Message: m, QoS: 1, Retain: true})
		h.wantQueue(stage, "d", &store.Entry{Seq: 1, Message: other, QoS: 1})
	})
	h.ok("Remove", h.s.Remove("c", 5))
	h.check(func(stage string) {
		h.wantQueue(stage, "c", &store.Entry{Seq: 6, Message: m, QoS: 1, Retain: true})
	})
	h.ok("Remove", h.s.Remove("c", 6))
	h.ok("Remove", h.s.Remove("d", 1))
	h.check(func(stage string) {
		h.wantQueue(stage, "c")
		h.wantQueue(stage, "d")
	})
	// The broker may queue a message again after every earlier entry of
	// it is gone.
	h.ok("Append", h.s.Append("a", &store.Entry{Seq: 2, Message: m, QoS: 1}))
	h.check(func(stage string) { h.wantQueue(stage, "a", &store.Entry{Seq: 2, Message: m, QoS: 1}) })
}

// A message loaded after a restart is queued again for another session;
// it stays while any entry refers to it.
func testSharedMessageAcrossReopen(h *harness) {
	m := Sample(7, "t", "body")
	h.ok("Append", h.s.Append("a", &store.Entry{Seq: 1, Message: m, QoS: 1}))
	h.cycle()
	var loaded *store.Message
	for _, e := range h.queue("a") {
		loaded = e.Message
	}
	if loaded == nil {
		h.t.Fatal("queue a lost its entry")
	}
	h.ok("Append", h.s.Append("b", &store.Entry{Seq: 1, Message: loaded, QoS: 1}))
	h.ok("Remove", h.s.Remove("a", 1))
	h.cycle()
	h.check(func(stage string) {
		h.wantQueue(stage, "a")
		h.wantQueue(stage, "b", &store.Entry{Seq: 1, Message: m, QoS: 1})
	})
}

func testMessageRoundTrip(h *harness) {
	big := bytes.Repeat([]byte{0, 1, 2, 3, 0xfe, 0xff}, 200_000)
	msgs := []*store.Message{
		Sample(1, "full", "payload"),
		Plain(2, "plain", ""),
		{ID: 3, Topic: "big", Payload: big, QoS: 2, Retain: true, Created: time.Unix(1, 1)},
		{ID: 1<<64 - 1, Topic: "max/id", Payload: []byte("x"), QoS: 0, Expiry: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	// Every single-valued property, also those a PUBLISH never carries:
	// the store keeps what it is given.
	all := Sample(5, "all/props", "p")
	p := &all.Properties
	for _, id := range []packet.PropID{packet.PropSessionExpiry, packet.PropServerKeepAlive, packet.PropRequestProblemInfo,
		packet.PropWillDelay, packet.PropRequestResponseInfo, packet.PropReceiveMaximum, packet.PropTopicAliasMaximum,
		packet.PropTopicAlias, packet.PropMaximumQoS, packet.PropRetainAvailable, packet.PropMaximumPacketSize,
		packet.PropWildcardSubAvailable, packet.PropSubIDAvailable, packet.PropSharedSubAvailable} {
		p.SetUint(id, uint32(id))
	}
	for _, id := range []packet.PropID{packet.PropAssignedClientID, packet.PropAuthMethod, packet.PropResponseInfo,
		packet.PropServerReference, packet.PropReasonString} {
		p.SetString(id, fmt.Sprintf("value of %#x", id))
	}
	p.SetBinary(packet.PropAuthData, []byte("auth"))
	p.SetString(packet.PropContentType, "") // present but empty
	msgs = append(msgs, all)

	for i, m := range msgs {
		h.ok("Append", h.s.Append("q", &store.Entry{Seq: uint64(i + 1), Message: m, QoS: 1}))
		h.ok("SetRetained", h.s.SetRetained(m))
	}
	h.check(func(stage string) {
		got := h.queue("q")
		if len(got) != len(msgs) {
			h.t.Fatalf("%s: %d queued, want %d", stage, len(got), len(msgs))
		}
		for i, m := range msgs {
			if d := DiffMessage(m, got[i].Message); d != "" {
				h.t.Errorf("%s: queued message %q: %s", stage, m.Topic, d)
			}
		}
		ret := h.retained()
		for _, m := range msgs {
			if d := DiffMessage(m, ret[m.Topic]); d != "" {
				h.t.Errorf("%s: retained message %q: %s", stage, m.Topic, d)
			}
		}
	})
}

func testRetained(h *harness) {
	h.ok("SetRetained", h.s.SetRetained(Sample(1, "a/b", "one")))
	h.ok("SetRetained", h.s.SetRetained(Plain(2, "a", "two")))
	h.ok("SetRetained", h.s.SetRetained(Plain(3, "a/b/c", "three")))
	h.ok("SetRetained", h.s.SetRetained(Plain(4, "gone", "four")))
	h.cycle()
	h.ok("SetRetained", h.s.SetRetained(Plain(5, "a/b", "replaced")))
	h.ok("DeleteRetained", h.s.DeleteRetained("gone"))
	h.ok("DeleteRetained of an unknown topic", h.s.DeleteRetained("unknown"))
	want := map[string]*store.Message{
		"a/b":   Plain(5, "a/b", "replaced"),
		"a":     Plain(2, "a", "two"),
		"a/b/c": Plain(3, "a/b/c", "three"),
	}
	h.check(func(stage string) {
		got := h.retained()
		if len(got) != len(want) {
			h.t.Errorf("%s: retained topics %v, want %v", stage, keys(got), keys(want))
		}
		for topic, w := range want {
			if d := DiffMessage(w, got[topic]); d != "" {
				h.t.Errorf("%s: retained %q: %s", stage, topic, d)
			}
		}
	})
}

// An error from the callback stops the Load and is returned.
func testCallbackError(h *harness) {
	for _, id := range []string{"a", "b"} {
		h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: id, Version: 5}))
		h.ok("SetRetained", h.s.SetRetained(Plain(1, id, "r")))
	}
	h.ok("Append", h.s.Append("a", &store.Entry{Seq: 1, QoS: 1}, &store.Entry{Seq: 2, QoS: 1}))
	stop := errors.New("stop")
	h.check(func(stage string) {
		n := 0
		err := h.s.LoadSessions(func(*store.Session) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			h.t.Errorf("%s: LoadSessions with a failing callback: %v after %d calls, want stop after 1", stage, err, n)
		}
		n = 0
		err = h.s.LoadQueue("a", func(*store.Entry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			h.t.Errorf("%s: LoadQueue with a failing callback: %v after %d calls, want stop after 1", stage, err, n)
		}
		n = 0
		err = h.s.LoadRetained(func(*store.Message) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			h.t.Errorf("%s: LoadRetained with a failing callback: %v after %d calls, want stop after 1", stage, err, n)
		}
	})
}

// Clients append, update and remove in parallel, sharing messages; run
// with -race.
func testConcurrent(h *harness) {
	const clients, perClient = 8, 60
	shared := make([]*store.Message, perClient)
	for i := range shared {
		shared[i] = Plain(uint64(i+1), "shared", fmt.Sprint(i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			id := fmt.Sprintf("client-%d", c)
			err := func() error {
				if err := h.s.SaveSession(&store.Session{ClientID: id, Version: 5, Expiry: Never}); err != nil {
					return err
				}
				for i := range perClient {
					seq := uint64(2*i + 1)
					own := Plain(uint64(1000*(c+1)+i), id, fmt.Sprint(i))
					if err := h.s.Append(id, &store.Entry{Seq: seq, Message: shared[i], QoS: 1},
						&store.Entry{Seq: seq + 1, Message: own, QoS: 2}); err != nil {
						return err
					}
					if err := h.s.Update(id, &store.Entry{Seq: seq, Message: shared[i], QoS: 1, PacketID: uint16(i + 1), State: store.EntrySent}); err != nil {
						return err
					}
					if i%2 == 0 {
						if err := h.s.Remove(id, seq); err != nil {
							return err
						}
					}
					if i%10 == 0 {
						if err := h.s.SetRetained(Plain(own.ID, id, fmt.Sprint(i))); err != nil {
							return err
						}
					}
				}
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Fatal(err)
	}
	h.check(func(stage string) {
		if n := len(h.sessions()); n != clients {
			h.t.Errorf("%s: %d sessions, want %d", stage, n, clients)
		}
		if n := len(h.retained()); n != clients {
			h.t.Errorf("%s: %d retained messages, want %d", stage, n, clients)
		}
		for c := range clients {
			id := fmt.Sprintf("client-%d", c)
			var want []*store.Entry
			for i := range perClient {
				seq := uint64(2*i + 1)
				if i%2 != 0 {
					want = append(want, &store.Entry{Seq: seq, Message: shared[i], QoS: 1, PacketID: uint16(i + 1), State: store.EntrySent})
				}
				want = append(want, &store.Entry{Seq: seq + 1, Message: Plain(uint64(1000*(c+1)+i), id, fmt.Sprint(i)), QoS: 2})
			}
			h.wantQueue(stage, id, want...)
		}
	})
}

// fn may write to the store while LoadQueue runs, as the broker does when
// it drops entries it restores: each entry is seen once, in order.
func testCallbackWrites(h *harness) {
	const n = 300
	var all []*store.Entry
	for i := range n {
		e := &store.Entry{Seq: uint64(i + 1), Message: Plain(uint64(i/3+1), "t", fmt.Sprint(i/3)), QoS: 1}
		all = append(all, e)
		h.ok("Append", h.s.Append("c", e))
	}
	h.cycle()
	var seen []uint64
	h.ok("LoadQueue", h.s.LoadQueue("c", func(e *store.Entry) error {
		seen = append(seen, e.Seq)
		if e.Seq%2 == 0 {
			if err := h.s.Remove("c", e.Seq); err != nil {
				return err
			}
		}
		return h.s.Append("other", &store.Entry{Seq: e.Seq, Message: e.Message, QoS: 1})
	}))
	if len(seen) != n || !slices.IsSorted(seen) || seen[0] != 1 || seen[n-1] != n {
		h.t.Fatalf("LoadQueue while writing saw %d entries %v..., want %d in order", len(seen), seen[:min(len(seen), 10)], n)
	}
	var odd []*store.Entry
	for _, e := range all {
		if e.Seq%2 == 1 {
			odd = append(odd, e)
		}
	}
	h.check(func(stage string) {
		h.wantQueue(stage, "c", odd...)
		h.wantQueue(stage, "other", all...)
	})
}

// A store that keeps inbound QoS 2 identifiers (store.InboundStore)
// returns them with the session, in order; SaveSession keeps them and
// DeleteSession removes them.
func testInbound(h *harness) {
	if _, ok := h.s.(store.InboundStore); !ok {
		h.t.Skip("the store does not implement store.InboundStore")
	}
	in := func() store.InboundStore { return h.s.(store.InboundStore) }
	for _, id := range []string{"a", "b", "ab"} {
		h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: id, Version: 5, Expiry: Never}))
	}
	for _, pid := range []uint16{65535, 1, 7, 256} {
		h.ok("AddInbound", in().AddInbound("a", pid))
	}
	h.ok("AddInbound", in().AddInbound("ab", 2))
	h.ok("AddInbound again", in().AddInbound("ab", 2))
	h.ok("RemoveInbound", in().RemoveInbound("a", 7))
	h.ok("RemoveInbound of an unknown identifier", in().RemoveInbound("a", 8))
	h.ok("RemoveInbound of an unknown client", in().RemoveInbound("unknown", 1))
	want := map[string][]uint16{"a": {1, 256, 65535}, "ab": {2}, "b": nil}
	h.check(func(stage string) { h.wantInbound(stage, want) })
	// Saving the session again does not lose them.
	h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: "a", Version: 5, Expiry: time.Hour}))
	h.ok("DeleteSession", h.s.DeleteSession("ab"))
	h.ok("SaveSession", h.s.SaveSession(&store.Session{ClientID: "ab", Version: 5}))
	want["ab"] = nil
	h.check(func(stage string) { h.wantInbound(stage, want) })
}

func (h *harness) wantInbound(stage string, want map[string][]uint16) {
	h.t.Helper()
	got := h.sessions()
	for id, w := range want {
		switch g := got[id]; {
		case g == nil:
			h.t.Errorf("%s: session %q missing", stage, id)
		case !slices.Equal(g.Inbound, w):
			h.t.Errorf("%s: session %q Inbound = %v, want %v", stage, id, g.Inbound, w)
		}
	}
}
