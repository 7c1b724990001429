package pebble

import (
	"bytes"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

// Encodings of version 1, byte for byte: a change here is a change of the
// on-disk format and takes a new formatVersion.
func TestEncodingV1(t *testing.T) {
	sess := &store.Session{ClientID: "c", Version: 5, Expiry: 90 * time.Second,
		Disconnected: time.Unix(1700000000, 5),
		Subscriptions: []store.Subscription{
			{Subscription: packet.Subscription{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}, ID: 300},
		}}
	msg := &store.Message{ID: 258, Topic: "t", Payload: []byte("hi"), QoS: 1, Retain: true}
	msg.Properties.SetUint(packet.PropMessageExpiry, 60)
	msg.Properties.SetBinary(packet.PropCorrelationData, []byte{9})
	msg.Properties.User = []packet.UserProperty{{Key: "k", Value: "v"}}
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"session", appendSession(nil, sess), []byte{
			5,                                  // Version
			0x80, 0x90, 0xd8, 0xc6, 0x9e, 0x05, // Expiry: varint 90e9 ns (zigzag 180e9)
			6,                            // Disconnected: 5 ns + 1
			0x80, 0xc4, 0x9f, 0xd5, 0x0c, // Unix seconds 1700000000, varint
			1,                // one subscription
			3, 'a', '/', '#', // filter
			2 | 1<<2 | 1<<3 | 2<<4, // options
			0xac, 0x02,             // ID 300
		}},
		{"entry", appendEntry(nil, &store.Entry{Seq: 1, Message: msg, QoS: 2, Retain: true, PacketID: 513, State: store.EntrySent, SubIDs: []uint32{1, 2}}), []byte{
			entryHasMessage | entryRetain | 2<<entryQoSShift | 1<<entryStateShift,
			0x82, 0x02, // message 258
			0x81, 0x04, // packet ID 513
			2, 1, 2, // SubIDs
		}},
		{"entry without message", appendEntry(nil, &store.Entry{Seq: 1, QoS: 1, State: store.EntryReleased}), []byte{
			1<<entryQoSShift | 2<<entryStateShift, 0, 0,
		}},
		{"message", appendMessage(nil, msg), []byte{
			1 | msgRetain, // QoS, Retain
			0x82, 0x02,    // ID 258
			1, 't', // Topic
			0, 0, // Created, Expiry: zero
			0x84, 0x04, // present: bits 2 (Message Expiry) and 9 (Correlation Data)
			60,   // Message Expiry
			1, 9, // Correlation Data
			0,                 // no subscription identifiers
			1, 1, 'k', 1, 'v', // User
			'h', 'i', // Payload
		}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, tc.got, tc.want)
		}
	}
}

// Encoding does not allocate into a buffer large enough.
func TestEncodingAllocs(t *testing.T) {
	m := storetest.Sample(1, "a/b", "payload")
	e := &store.Entry{Seq: 1, Message: m, QoS: 1, SubIDs: []uint32{1}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		buf = appendMessage(buf[:0], m)
		buf = appendEntry(buf[:0], e)
	}); n != 0 {
		t.Errorf("encoding a message and an entry: %v allocations, want 0", n)
	}
}

func seeds(f *testing.F) {
	m := storetest.Sample(42, "a/b", "payload")
	f.Add(appendMessage(nil, m))
	f.Add(appendMessage(nil, storetest.Plain(1, "", "")))
	f.Add(appendEntry(nil, &store.Entry{Seq: 1, Message: m, QoS: 2, SubIDs: []uint32{1, 2}}))
	f.Add(appendSession(nil, &store.Session{ClientID: "c", Version: 5, Expiry: storetest.Never, Disconnected: time.Now(),
		Subscriptions: []store.Subscription{{Subscription: packet.Subscription{Filter: "#", QoS: 1}, ID: 3}}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
}

// The decoders return an error, never panic, on any input; what decodes
// encodes back to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		again, err := decodeMessage(appendMessage(nil, m))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if d := storetest.DiffMessage(m, again); d != "" {
			t.Fatalf("re-encoded message differs: %s", d)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, id, has, err := decodeEntry(1, b)
		if err != nil {
			return
		}
		if has {
			e.Message = &store.Message{ID: id}
		}
		id2, has2, err := entryMessageID(b)
		if err != nil || id2 != id || has2 != has {
			t.Fatalf("entryMessageID = %d, %v, %v; decodeEntry read %d, %v", id2, has2, err, id, has)
		}
		again, id3, _, err := decodeEntry(1, appendEntry(nil, e))
		if has {
			again.Message = &store.Message{ID: id3}
		}
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if d := storetest.DiffEntry(e, again); d != "" {
			t.Fatalf("re-encoded entry differs: %s", d)
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSession("c", b)
		if err != nil {
			return
		}
		again, err := decodeSession("c", appendSession(nil, s))
		if err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if d := storetest.DiffSession(s, again); d != "" {
			t.Fatalf("re-encoded session differs: %s", d)
		}
	})
}
