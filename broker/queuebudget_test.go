package broker_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// MaxQueuedBytesTotal bounds the bytes all sessions queue in memory
// together, at its edge: deliveries that fill it exactly are queued, the
// next byte is dropped and counted; a session that drains its queue makes
// room again. Each delivery costs 128 bytes besides topic and payload.
func TestQueuedBytesTotalAtEdge(t *testing.T) {
	t.Parallel()
	const cost = 128 + len("q/t") + 100 // one queued delivery
	o := testOptions()
	o.MaxQueuedBytesTotal = 3 * int64(cost)
	b := runBroker(t, o)
	var subs []*rawClient
	for _, id := range []string{"qa", "qb"} {
		c, _ := connectOK(t, b.Addr, &packet.Connect{Version: packet.V311, ClientID: id, KeepAlive: 30})
		c.sub("q/#", 1)
		c.send(&packet.Disconnect{})
		b.waitOffline(t, id)
		subs = append(subs, c)
	}
	_ = subs
	pub := client(t, b, "qp")
	payload := strings.Repeat("x", 100)
	pub.publish("q/t", payload, 1, false) // qa and qb: 2 costs
	pub.publish("q/t", payload, 1, false) // qa fits (3 costs exactly), qb does not
	st := b.Stats()
	if st.QueuedBytes != 3*int64(cost) || st.DroppedBudget != 1 || st.DroppedQueue != 1 {
		t.Fatalf("queued %d bytes, dropped %d over the budget (%d in all); want %d, 1, 1",
			st.QueuedBytes, st.DroppedBudget, st.DroppedQueue, 3*cost)
	}
	pub.publish("q/t", payload+"y", 1, false) // one byte more still: both dropped
	if st := b.Stats(); st.DroppedBudget != 3 {
		t.Fatalf("dropped %d over the budget, want 3", st.DroppedBudget)
	}

	// qa comes back and takes its 2 messages: its bytes are freed.
	qa, ack := connectOK(t, b.Addr, &packet.Connect{Version: packet.V311, ClientID: "qa", KeepAlive: 30})
	if !ack.SessionPresent {
		t.Fatal("qa's session is gone")
	}
	for range 2 {
		qa.ack(qa.expectPublish("q/t", payload))
	}
	qa.sync()
	eventually(t, "qa's queue freed", func() bool { return b.Stats().QueuedBytes == int64(cost) })
	qa.send(&packet.Disconnect{})
	b.waitOffline(t, "qa")
	pub.publish("q/t", payload, 1, false) // qa and qb: 3 costs again, within
	if st := b.Stats(); st.DroppedBudget != 3 || st.QueuedBytes != 3*int64(cost) {
		t.Errorf("after draining: dropped %d, queued %d; want 3 and %d", st.DroppedBudget, st.QueuedBytes, 3*cost)
	}
}
