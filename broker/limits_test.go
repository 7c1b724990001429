package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Options.MaxPacketSize: a PUBLISH larger than the limit closes the
// connection, as soon as its fixed header shows the size; one within it is
// routed. An oversize CONNECT is closed without CONNACK.
func TestMaxPacketSize(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxPacketSize = 1024
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("big", 0)

	pub := client(t, b, "pub")
	fits := strings.Repeat("x", 1024-3-2-len("big")) // fixed header 1+2, topic 2+3
	if n := (&packet.Publish{Topic: "big", Payload: []byte(fits)}).Size(packet.V311); n != 1024 {
		t.Fatalf("test PUBLISH is %d bytes, want 1024", n)
	}
	pub.publish("big", fits, 0, false)
	sub.expectPublish("big", fits)

	pub.send(&packet.Publish{Topic: "big", Payload: []byte(fits + "y")})
	pub.expectClosedSilently(time.Second)
	sub.sync() // not routed

	// Only the fixed header of a 2000-byte PUBLISH: closed without waiting
	// for the body.
	c := client(t, b, "header-only")
	c.write(hx("30 d0 0f"))
	c.expectClosedSilently(time.Second)

	big := dialRaw(t, b.Addr)
	cp := connectPacket(strings.Repeat("c", 2000))
	big.write(big.encode(cp))
	big.expectClosedSilently(time.Second)
	expectServing(t, b)
}

// Options.MaxConnections: the connection beyond the limit is closed
// without CONNACK; once a client leaves, a new one is accepted.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxConnections = 2
	b := runBroker(t, opts)
	c1 := client(t, b, "c1")
	client(t, b, "c2")
	extra := dialRaw(t, b.Addr)
	extra.write(extra.encode(connectPacket("c3")))
	extra.expectClosedSilently(time.Second)

	c1.send(&packet.Disconnect{})
	eventually(t, "c1 to leave", func() bool { return b.ConnCount() == 1 })
	c3 := client(t, b, "c3")
	c3.sync()
}

// Options.MaxTopicLength and MaxTopicLevels: a PUBLISH to a longer or
// deeper topic closes the connection (3.1.1 has no negative PUBACK); a
// topic at the limits is fine; a will topic over them refuses the CONNECT.
// (SUBSCRIBE over the limits gets 0x80: TestSubackCodesInOrder.)
func TestMaxTopicLengthAndLevels(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxTopicLength = 16
	opts.MaxTopicLevels = 4
	b := runBroker(t, opts)
	sub := client(t, b, "sub")
	sub.sub("#", 0)

	ok := client(t, b, "ok")
	ok.publish("a/b/c/d", "4 levels", 0, false)
	ok.publish("0123456789abcdef", "16 bytes", 0, false)
	sub.expectPublish("a/b/c/d", "4 levels")
	sub.expectPublish("0123456789abcdef", "16 bytes")

	for _, topic := range []string{"a/b/c/d/e", "0123456789abcdefg", "////"} {
		c := client(t, b, "over")
		c.send(&packet.Publish{Topic: topic, Payload: []byte("x")})
		c.expectClosedSilently(time.Second)
	}
	sub.sync()

	c, ack := connectRaw(t, b.Addr, withWill("w", "a/b/c/d/e", "x", 0, false))
	if ack.ReasonCode == packet.Success {
		t.Fatalf("will topic over the level limit accepted")
	}
	c.expectClosedSilently(time.Second)
}

// Options.MaxClientIDLength: a longer identifier gets CONNACK 0x02
// [MQTT-3.1.3-9].
func TestMaxClientIDLength(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxClientIDLength = 23
	b := runBroker(t, opts)
	connectOK(t, b.Addr, connectPacket(strings.Repeat("a", 23)))
	c, ack := connectRaw(t, b.Addr, connectPacket(strings.Repeat("a", 24)))
	if ack.ReasonCode != packet.ClientIdentifierNotValid {
		t.Fatalf("CONNACK %s, want 0x02", ack.ReasonCode)
	}
	c.expectClosedSilently(time.Second)
}

// Options.Validate reports every invalid option at once.
func TestOptionsValidate(t *testing.T) {
	o := testOptions()
	o.ConnectTimeout = 0
	o.MaxPacketSize = 10
	o.MaxInflight = 0
	err := o.Validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	for _, want := range []string{"connect timeout", "max packet size", "max inflight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := broker.New(o); err == nil {
		t.Errorf("broker.New accepted invalid options")
	}
}

// Packets close to the default MaxPacketSize (1 MiB) arrive intact: a
// large CONNECT (will payload) and a large PUBLISH, written in one piece
// and one byte at a time for the header.
func TestLargePackets(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub := client(t, b, "sub")
	sub.sub("large/#", 1)

	will := strings.Repeat("w", 60000)
	c, _ := connectOK(t, b.Addr, withWill("big-will", "large/will", will, 1, false))
	payload := strings.Repeat("0123456789abcdef", 60000) // 960000 bytes
	raw := c.encode(&packet.Publish{Topic: "large/pub", Payload: []byte(payload), QoS: 1, PacketID: 1})
	for _, x := range raw[:4] {
		c.write([]byte{x})
	}
	c.write(raw[4:])
	expectPacket[*packet.Puback](c)
	sub.ack(sub.expectPublish("large/pub", payload))
	c.nc.Close()
	sub.ack(sub.expectPublish("large/will", will))
}
