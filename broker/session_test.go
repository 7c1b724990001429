package broker_test

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// persistentConnect is a 3.1.1 CONNECT with clean session 0.
func persistentConnect(id string) *packet.Connect {
	p := connectPacket(id)
	p.CleanStart = false
	return p
}

// [MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-3.2.2-3]: session present is 0 for a
// clean session and for a new persistent one, 1 when a persistent session
// is resumed.
func TestSessionPresentFlag(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	steps := []struct {
		clean   bool
		present bool
		why     string
	}{
		{true, false, "clean session [MQTT-3.2.2-1]"},
		{false, false, "new persistent session [MQTT-3.2.2-3]"},
		{false, true, "resumed persistent session [MQTT-3.2.2-2]"},
		{false, true, "resumed again"},
		{true, false, "clean session discards it [MQTT-3.1.2-6]"},
		{false, false, "nothing left after the clean session [MQTT-3.2.2-3]"},
	}
	for i, s := range steps {
		p := connectPacket("sp")
		p.CleanStart = s.clean
		c, ack := connectOK(t, b.Addr, p)
		if ack.SessionPresent != s.present {
			t.Errorf("step %d, %s: session present %v, want %v", i, s.why, ack.SessionPresent, s.present)
		}
		c.send(&packet.Disconnect{})
		c.expectClosedSilently(waitFor)
		b.waitOffline(t, "sp")
	}
}

// [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-4.1.0-1]: a clean-session-0 session
// keeps its subscriptions, and the QoS 1 and 2 messages published while
// it is offline are delivered, in order, when it reconnects; QoS 0 ones are
// not kept (Options.QueueQoS0 is off by default).
func TestPersistentSessionQueuesWhileOffline(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub, _ := connectOK(t, b.Addr, persistentConnect("away"))
	sub.sub("away/#", 2)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "away")

	pub := client(t, b, "pub")
	pub.publish("away/1", "q1", 1, false)
	pub.publish("away/0", "q0", 0, false)
	pub.publish("away/2", "q2", 2, false)
	pub.publish("away/3", "q1 again", 1, false)
	pub.sync()

	sub, ack := connectOK(t, b.Addr, persistentConnect("away"))
	if !ack.SessionPresent {
		t.Fatalf("session present 0, want 1 [MQTT-3.2.2-2]")
	}
	var got []*packet.Publish
	for _, want := range []struct {
		topic, payload string
		qos            byte
	}{{"away/1", "q1", 1}, {"away/2", "q2", 2}, {"away/3", "q1 again", 1}} {
		p := sub.expectPublish(want.topic, want.payload)
		if p.QoS != want.qos || p.Dup || p.Retain {
			t.Errorf("queued message delivered as %s, want QoS %d, DUP 0, RETAIN 0", describe(p), want.qos)
		}
		got = append(got, p)
	}
	for _, p := range got {
		sub.ack(p)
	}
	sub.sync() // the QoS 0 message was not kept

	// The subscription survived too: live delivery without subscribing again.
	pub.publish("away/live", "now", 0, false)
	sub.expectPublish("away/live", "now")
}

// Options.QueueQoS0 keeps QoS 0 messages for offline persistent sessions:
// on reconnect they are delivered at QoS 0, without a packet identifier,
// in order with the QoS 1 ones, and take no place in the inflight window.
func TestPersistentSessionQueueQoS0(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.QueueQoS0 = true
	opts.MaxInflight = 1
	b := runBroker(t, opts)
	sub, _ := connectOK(t, b.Addr, persistentConnect("away"))
	sub.sub("away", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "away")
	pub := client(t, b, "pub")
	pub.publish("away", "q0", 0, false)
	pub.publish("away", "q1", 1, false)
	pub.publish("away", "q0b", 0, false)
	pub.publish("away", "q1b", 1, false)
	pub.sync()

	sub, _ = connectOK(t, b.Addr, persistentConnect("away"))
	if p := sub.expectPublish("away", "q0"); p.QoS != 0 || p.PacketID != 0 {
		t.Fatalf("got %s, want QoS 0", describe(p))
	}
	p1 := sub.expectPublish("away", "q1")
	sub.sync() // the window of 1 is full; nothing else yet
	sub.ack(p1)
	if p := sub.expectPublish("away", "q0b"); p.QoS != 0 {
		t.Fatalf("got %s, want QoS 0", describe(p))
	}
	sub.ack(sub.expectPublish("away", "q1b"))
	sub.sync()
	pub.publish("away", "live", 1, false)
	sub.ack(sub.expectPublish("away", "live"))
}

// Options.MaxQueued bounds a session's queue: further QoS 1/2 messages are
// dropped and counted, in Stats().DroppedQueue and per session (read
// through export_test.go: the per-session count is not exported).
func TestPersistentSessionMaxQueued(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxQueued = 3
	b := runBroker(t, opts)
	sub, _ := connectOK(t, b.Addr, persistentConnect("bounded"))
	sub.sub("bounded", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "bounded")

	pub := client(t, b, "pub")
	for i := range 5 {
		pub.publish("bounded", fmt.Sprint(i), 1, false)
	}
	if n, _ := b.SessionDropped("bounded"); n != 2 {
		t.Errorf("session counted %d dropped messages, want 2", n)
	}
	if n := b.Stats().DroppedQueue; n != 2 {
		t.Errorf("server counted %d dropped messages, want 2", n)
	}
	sub, _ = connectOK(t, b.Addr, persistentConnect("bounded"))
	for i := range 3 {
		sub.ack(sub.expectPublish("bounded", fmt.Sprint(i)))
	}
	sub.sync()
}

// The queue also holds messages while the inflight window is full, and
// drains in order as acknowledgements come [MQTT-4.6.0-6].
func TestQueueBehindInflightWindow(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxInflight = 1
	opts.MaxQueued = 2
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("w", 1)
	pub := client(t, b, "pub")
	for i := range 4 { // one inflight, two queued, one dropped
		pub.publish("w", fmt.Sprint(i), 1, false)
	}
	for i := range 3 {
		sub.ack(sub.expectPublish("w", fmt.Sprint(i)))
	}
	sub.sync()
	if n := b.Stats().DroppedQueue; n != 1 {
		t.Errorf("dropped %d, want 1", n)
	}
}

// [MQTT-3.1.2-6]: clean session 1 discards the earlier session: its
// subscriptions and queued messages are gone, and the new session is not
// kept after the connection.
func TestCleanSessionDiscardsState(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub, _ := connectOK(t, b.Addr, persistentConnect("cs"))
	sub.sub("cs", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "cs")
	pub := client(t, b, "pub")
	pub.publish("cs", "queued", 1, false)

	sub, ack := connectOK(t, b.Addr, connectPacket("cs"))
	if ack.SessionPresent {
		t.Fatalf("clean session: session present 1")
	}
	pub.publish("cs", "live", 1, false)
	sub.sync() // neither the queued message nor the subscription remain
	if n := b.Stats().Subscriptions; n != 0 {
		t.Errorf("%d subscriptions left", n)
	}
	sub.sub("cs", 1)
	sub.send(&packet.Disconnect{})
	b.waitOffline(t, "cs")
	if exists, _ := b.SessionState("cs"); exists {
		t.Errorf("clean session kept after disconnect")
	}
	if n := b.Stats().Subscriptions; n != 0 {
		t.Errorf("%d subscriptions left after the clean session ended", n)
	}
}

// A persistent session taken over by a new connection hands its state to
// it [MQTT-3.1.4-2] [MQTT-3.1.4-3]: messages unacknowledged on the old
// connection are re-sent on the new one.
func TestTakeoverResumesPersistentSession(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	old, _ := connectOK(t, b.Addr, persistentConnect("to"))
	old.sub("to", 1)
	pub := client(t, b, "pub")
	pub.publish("to", "m", 1, false)
	first := old.expectPublish("to", "m")

	c, ack := connectOK(t, b.Addr, persistentConnect("to"))
	if !ack.SessionPresent {
		t.Fatalf("takeover of a persistent session: session present 0")
	}
	old.expectClosedSilently(waitFor)
	p := c.expectPublish("to", "m")
	if !p.Dup || p.PacketID != first.PacketID {
		t.Fatalf("re-sent as %s, want DUP 1 and id %d", describe(p), first.PacketID)
	}
	c.ack(p)
	c.sync()
}

// MQTT 3.1 has no session present flag: a resumed 3.1 session gets a
// CONNACK with flags 0 (the decoder refuses anything else at level 3).
func TestMQTT31ResumedSessionFlags(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p := &packet.Connect{Version: packet.V31, ClientID: "old", KeepAlive: 60}
	c, _ := connectOK(t, b.Addr, p)
	c.sub("v31", 1)
	c.send(&packet.Disconnect{})
	b.waitOffline(t, "old")
	pub := client(t, b, "pub")
	pub.publish("v31", "queued", 1, false)
	c, ack := connectOK(t, b.Addr, p)
	if ack.SessionPresent {
		t.Fatalf("3.1 CONNACK with session present")
	}
	c.ack(c.expectPublish("v31", "queued"))
	c.sync()
}
