package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// The per-topic counters match the traffic generated: messages and payload
// bytes in (by the publisher's QoS) and out (by the QoS of each copy), per
// configured filter, a message counted once for each filter it matches;
// copies dropped (an offline session's full queue) are counted as dropped.
func TestTopicMetricsCountTraffic(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.TopicMetrics = []string{"sensors/#", "sensors/+/temp", "other/#", "$SYS/#"}
	o.MaxQueued = 2
	b := runBroker(t, o)

	sub0 := client(t, b, "m0") // QoS 0 on everything
	sub0.sub("#", 0)
	sub1 := pahoClient(t, b.Addr, "m1", 4, nil) // QoS 1 on the temperatures
	ch := pahoMessages(t, sub1, "sensors/+/temp", 1, 100)
	// An offline persistent session with room for 2 queued messages.
	off, _ := connectOK(t, b.Addr, &packet.Connect{Version: packet.V311, ClientID: "offline", KeepAlive: 30})
	off.sub("sensors/a/temp", 1)
	off.send(&packet.Disconnect{})
	b.waitOffline(t, "offline")

	pub := client(t, b, "mp")
	const n = 10
	for i := range n {
		pub.publish("sensors/a/temp", strings.Repeat("t", i), 1, false) // 45 bytes in all
		pub.publish("sensors/b/hum", "hh", 0, false)
		pub.publish("elsewhere", "zzz", 2, false)
	}
	for range n {
		nextMessage(t, ch)
	}
	for range 3 * n {
		expectPacket[*packet.Publish](sub0)
	}
	sub0.sync()

	got := map[string]broker.TopicStats{}
	for _, ts := range b.TopicStats() {
		got[ts.Filter] = ts
	}
	if len(got) != 4 {
		t.Fatalf("TopicStats: %+v", got)
	}
	// sensors/#: 10 temp + 10 hum in; out: temp to 3 sessions (sub0 at
	// QoS 0, sub1 at 1, offline at 1: 2 queued, 8 dropped), hum to sub0.
	check := func(f string, want broker.TopicStats) {
		t.Helper()
		g := got[f]
		want.Filter = f
		if g != want {
			t.Errorf("%s:\n got %+v\nwant %+v", f, g, want)
		}
	}
	check("sensors/#", broker.TopicStats{
		MessagesIn: 2 * n, BytesIn: 45 + 2*n, MessagesInByQoS: [3]uint64{n, n, 0},
		MessagesOut: 3 * n, BytesOut: 2*45 + 2*n, MessagesOutByQoS: [3]uint64{2 * n, n, 0},
		Dropped: n - 2, DroppedByQoS: [3]uint64{0, n - 2, 0},
	})
	check("sensors/+/temp", broker.TopicStats{
		MessagesIn: n, BytesIn: 45, MessagesInByQoS: [3]uint64{0, n, 0},
		MessagesOut: 2 * n, BytesOut: 2 * 45, MessagesOutByQoS: [3]uint64{n, n, 0},
		Dropped: n - 2, DroppedByQoS: [3]uint64{0, n - 2, 0},
	})
	check("other/#", broker.TopicStats{})
	check("$SYS/#", broker.TopicStats{})

	// The counts are not reset by a reload with the same filters; a
	// different list starts afresh.
	next := o
	if err := b.Reload(next); err != nil {
		t.Fatal(err)
	}
	if ts := b.TopicStats(); ts[0].MessagesIn != 2*n {
		t.Errorf("after a reload with the same filters: %d in, want %d", ts[0].MessagesIn, 2*n)
	}
	next.TopicMetrics = []string{"elsewhere"}
	if err := b.Reload(next); err != nil {
		t.Fatal(err)
	}
	pub.publish("elsewhere", "e", 0, false)
	expectPacket[*packet.Publish](sub0)
	if ts := b.TopicStats(); len(ts) != 1 || ts[0].Filter != "elsewhere" || ts[0].MessagesIn != 1 || ts[0].MessagesOut != 1 {
		t.Errorf("after a reload with new filters: %+v", ts)
	}
}

// The number of filters is bounded.
func TestTopicMetricsBounded(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxTopicMetrics = 2
	o.TopicMetrics = []string{"a", "b", "c"}
	if _, err := broker.New(o); err == nil || !strings.Contains(err.Error(), "maximum of 2") {
		t.Errorf("3 filters over a maximum of 2: %v", err)
	}
	o.TopicMetrics = []string{"a/#/b"}
	o.MaxTopicMetrics = 100
	if _, err := broker.New(o); err == nil {
		t.Error("an invalid filter was accepted")
	}
}
