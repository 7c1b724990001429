package broker_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.3.4-9] [MQTT-4.9.0-2] [MQTT-3.3.4-10]: with the client's Receive
// Maximum 2, the broker never has more than two QoS 1/2 PUBLISH packets
// unacknowledged (a QoS 2 one counts until PUBCOMP); each acknowledgement
// lets exactly one more go, in order, and other packets still flow.
func TestV5ReceiveMaximumOutbound_MQTT_3_3_4_9(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p := v5Connect("rm2")
	p.Properties.SetUint(packet.PropReceiveMaximum, 2)
	sub, _ := v5ConnectOK(t, b.Addr, p)
	sub.v5Sub(0, packet.Subscription{Filter: "rm", QoS: 2})
	pub := v5Client(t, b, "pub")
	const n = 7
	for i := range n {
		pub.v5Pub("rm", fmt.Sprint(i), byte(i%2+1), false)
	}

	var window []*packet.Publish
	for i := range 2 {
		window = append(window, sub.expectPublish("rm", fmt.Sprint(i)))
	}
	sub.sync() // nothing more while two are unacknowledged
	for next := 2; len(window) > 0; next++ {
		m := window[0]
		window = window[1:]
		if m.QoS == 1 {
			sub.send(&packet.Puback{PacketID: m.PacketID})
		} else {
			sub.send(&packet.Pubrec{PacketID: m.PacketID})
			if rel := expectPacket[*packet.Pubrel](sub); rel.PacketID != m.PacketID {
				t.Fatalf("PUBREL id %d, want %d", rel.PacketID, m.PacketID)
			}
			sub.sync() // still unacknowledged until PUBCOMP
			sub.send(&packet.Pubcomp{PacketID: m.PacketID})
		}
		if next < n {
			window = append(window, sub.expectPublish("rm", fmt.Sprint(next)))
		}
		sub.sync()
	}
}

// 5.0 3.3.4 (flow control) and 3.2.2.3.3: the broker announces
// Options.ReceiveMaximum in CONNACK, and a client that leaves more QoS 2
// PUBLISH packets unacknowledged (PUBREL not sent) is disconnected with
// 0x93 (Receive Maximum exceeded) [MQTT-3.3.4-7]. QoS 1 publishes and a
// resent duplicate do not count.
func TestV5ReceiveMaximumInbound_MQTT_3_3_4_7(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ReceiveMaximum = 2
	b := runBroker(t, opts)
	watch := v5Client(t, b, "watch")
	watch.v5Sub(0, packet.Subscription{Filter: "rx", QoS: 0})

	c, ack := v5ConnectOK(t, b.Addr, v5Connect("eager"))
	if !ack.Properties.Has(packet.PropReceiveMaximum) || ack.Properties.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d (present %v), want 2", ack.Properties.ReceiveMaximum, ack.Properties.Has(packet.PropReceiveMaximum))
	}
	publish := func(id uint16, qos byte, dup bool) {
		t.Helper()
		c.send(&packet.Publish{Topic: "rx", Payload: []byte(fmt.Sprint(id)), QoS: qos, PacketID: id, Dup: dup})
	}
	publish(1, 2, false)
	expectPacket[*packet.Pubrec](c)
	publish(2, 2, false)
	expectPacket[*packet.Pubrec](c)
	publish(3, 1, false) // QoS 1 is acknowledged at once
	expectPacket[*packet.Puback](c)
	publish(1, 2, true) // a resend of an unreleased one
	expectPacket[*packet.Pubrec](c)
	c.send(&packet.Pubrel{PacketID: 1})
	expectPacket[*packet.Pubcomp](c)
	publish(4, 2, false) // one released, so one more may come
	expectPacket[*packet.Pubrec](c)
	for _, want := range []string{"1", "2", "3", "4"} {
		watch.expectPublish("rx", want)
	}

	publish(5, 2, false) // three unacknowledged
	c.v5ExpectDisconnect(packet.ReceiveMaximumExceeded)
	watch.v5ExpectNothing()
}

// v5PublishOfSize returns a QoS 0 5.0 PUBLISH to topic whose encoding is
// exactly size bytes.
func v5PublishOfSize(t *testing.T, topic string, qos byte, size int) *packet.Publish {
	t.Helper()
	p := &packet.Publish{Topic: topic, QoS: qos}
	if qos > 0 {
		p.PacketID = 1
	}
	p.Payload = make([]byte, size-p.Size(packet.V5))
	for p.Size(packet.V5) > size { // the length prefix grew
		p.Payload = p.Payload[:len(p.Payload)-1]
	}
	for i := range p.Payload {
		p.Payload[i] = 'a' + byte(i%26)
	}
	if got := p.Size(packet.V5); got != size {
		t.Fatalf("cannot build a %d-byte PUBLISH (got %d)", size, got)
	}
	return p
}

// 5.0 3.2.2.3.6 and 4.13: the broker announces Options.MaxPacketSize as
// Maximum Packet Size in CONNACK; a larger packet from the client gets
// DISCONNECT 0x95 (Packet too large), decided from its fixed header alone.
// A larger CONNECT gets CONNACK 0x95.
func TestV5MaximumPacketSizeInbound_MQTT_3_2_2_15(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxPacketSize = 128
	b := runBroker(t, opts)
	sub := v5Client(t, b, "sub")
	sub.v5Sub(0, packet.Subscription{Filter: "mps", QoS: 0})

	c, ack := v5ConnectOK(t, b.Addr, v5Connect("big"))
	if !ack.Properties.Has(packet.PropMaximumPacketSize) || ack.Properties.MaximumPacketSize != 128 {
		t.Fatalf("CONNACK Maximum Packet Size %d (present %v), want 128", ack.Properties.MaximumPacketSize, ack.Properties.Has(packet.PropMaximumPacketSize))
	}
	fits := v5PublishOfSize(t, "mps", 0, 128)
	c.send(fits)
	sub.expectPublish("mps", string(fits.Payload))

	over := c.encode(v5PublishOfSize(t, "mps", 0, 129))
	if err := c.write(over[:8]); err != nil { // the header says 129 bytes: enough to refuse
		t.Fatal(err)
	}
	c.v5ExpectDisconnect(packet.PacketTooLarge)
	sub.v5ExpectNothing()

	p := v5Connect("big-connect")
	p.Properties.User = v5UserProps("k", strings.Repeat("v", 150))
	v5ExpectConnackRefused(t, b.Addr, p, packet.PacketTooLarge)
}

// [MQTT-3.1.2-24] [MQTT-3.1.2-25]: the broker never sends a client a packet
// larger than the Maximum Packet Size it announced. Such a message is
// dropped for that client alone, as if delivered: it takes no place in the
// inflight window and is not sent again on reconnection; smaller messages
// after it still arrive.
func TestV5MaximumPacketSizeOutbound_MQTT_3_1_2_24(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "v5-small"
	connect := func(clean bool) *rawClient {
		p := v5Persistent(id, clean, 60)
		p.Properties.SetUint(packet.PropMaximumPacketSize, 64)
		p.Properties.SetUint(packet.PropReceiveMaximum, 1)
		c, _ := v5ConnectOK(t, b.Addr, p)
		return c
	}
	small := connect(true)
	small.v5Sub(0, packet.Subscription{Filter: "size/#", QoS: 1})
	all := v5Client(t, b, "all")
	all.v5Sub(0, packet.Subscription{Filter: "size/#", QoS: 1})
	pub := v5Client(t, b, "pub")

	big := strings.Repeat("B", 100)
	for _, qos := range []byte{1, 0} {
		pub.v5Pub("size/t", big, qos, false)
		pub.v5Pub("size/t", fmt.Sprint("small ", qos), qos, false)
		m := small.expectPublish("size/t", fmt.Sprint("small ", qos)) // the big one was skipped
		if m.Size(packet.V5) > 64 {
			t.Errorf("sent a %d-byte packet over the client's 64 [MQTT-3.1.2-24]", m.Size(packet.V5))
		}
		small.ack(m)
		for _, want := range []string{big, fmt.Sprint("small ", qos)} {
			all.ack(all.expectPublish("size/t", want)) // others get everything
		}
	}
	// Properties count too: a small payload with a large User Property.
	p := &packet.Publish{Topic: "size/t", Payload: []byte("p"), QoS: 1}
	p.Properties.User = v5UserProps("k", strings.Repeat("v", 60))
	pub.v5Publish(p)
	all.ack(all.expectPublish("size/t", "p"))
	small.v5ExpectNothing()

	// Dropped QoS 1 messages count as delivered: not resent on resumption.
	pub.v5Pub("size/t", big, 1, false)
	all.ack(all.expectPublish("size/t", big))
	small.send(&packet.Disconnect{})
	b.waitOffline(t, id)
	pub.v5Pub("size/t", big, 1, false)
	all.ack(all.expectPublish("size/t", big))
	small = connect(false)
	pub.v5Pub("size/t", "after", 1, false)
	small.ack(small.expectPublish("size/t", "after"))
	small.v5ExpectNothing()

	// paho with Maximum Packet Size 64.
	cp := v5PahoConnect("paho-small")
	cp.Properties = &paho.ConnectProperties{MaximumPacketSize: paho.Uint32(64)}
	pc, _ := v5Paho(t, b.Addr, cp, nil)
	pc.sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "size/paho", QoS: 1}}})
	pub.v5Pub("size/paho", big, 1, false)
	pub.v5Pub("size/paho", "fits", 1, false)
	if m := pc.next(t); string(m.Payload) != "fits" {
		t.Errorf("paho got %d bytes %.10q..., want \"fits\"", len(m.Payload), m.Payload)
	}
}
