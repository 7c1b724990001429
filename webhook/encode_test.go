package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
)

// The hand-written encoder writes what encoding/json writes for the same
// events, escapes and invalid UTF-8 included.
func TestEncodeBatchMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.FixedZone("x", 3600))
	batch := []broker.Event{
		{Kind: broker.EventConnected, Time: now, ClientID: "c\"1\\", Username: "ü<&>", Remote: "127.0.0.1:5", Protocol: 5},
		{Kind: broker.EventDisconnected, Time: now, ClientID: "c\n\t\r\x01", Reason: "protocol_error", Detail: "bad \xff byte \u2028"},
		{Kind: broker.EventSubscribed, Time: now, ClientID: "s", Topic: "a/+/#", QoS: 2},
		{Kind: broker.EventUnsubscribed, Time: now, ClientID: "s", Topic: "a/+/#"},
		{Kind: broker.EventPublished, Time: now, ClientID: "p", Topic: "t/ä", QoS: 1, Retain: true, Payload: []byte{0, 1, 2, 255}},
		{Kind: broker.EventDelivered, Time: now, ClientID: "s", Topic: "t", Payload: nil},
		{Kind: broker.EventDropped, Time: now, Topic: "t", QoS: 0, Reason: "no_subscribers", Payload: []byte("x")},
		{Kind: broker.EventSessionEnded, Time: now, ClientID: "s", Reason: "expired"},
	}
	for _, payload := range []bool{true, false} {
		got, err := encodeBatch(batch, payload)
		if err != nil {
			t.Fatal(err)
		}
		p := Payload{}
		for i := range batch {
			p.Events = append(p.Events, ToJSON(&batch[i], payload))
		}
		want, _ := json.Marshal(p)
		if string(got) != string(want) {
			t.Errorf("payload %v:\n got %s\nwant %s", payload, got, want)
		}
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := make([]broker.Event, 100)
	for i := range batch {
		batch[i] = broker.Event{Kind: broker.EventPublished, Time: time.Now(), ClientID: "client-1", Topic: "sensors/1/temp", QoS: 1, Payload: make([]byte, 64)}
	}
	b.ReportAllocs()
	for b.Loop() {
		encodeBatch(batch, true)
	}
}
