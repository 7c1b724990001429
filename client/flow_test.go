package client_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// TestReceiveMaximum: the client never has more QoS 1 messages
// unacknowledged than the server's Receive Maximum [MQTT-4.9.0-2].
func TestReceiveMaximum(t *testing.T) {
	fs := newFakeServer(t)
	ack := &packet.Connack{}
	ack.Properties.SetUint(packet.PropReceiveMaximum, 2)
	c := dialFake(t, fs, options(fs.url(), packet.V5), ack)
	fc := c.fc

	const n = 5
	results := make(chan error, n)
	for i := range n {
		go func() {
			results <- c.Publish(testCtx(t), "rm", []byte(fmt.Sprint(i)), client.PublishOptions{QoS: 1})
		}()
	}
	var window []uint16
	for range 2 {
		window = append(window, readType[*packet.Publish](fc).PacketID)
	}
	for sent := 2; sent < n; sent++ {
		fc.nothing() // the window is full
		fc.send(&packet.Puback{PacketID: window[0]})
		window = append(window[1:], readType[*packet.Publish](fc).PacketID)
	}
	for _, id := range window {
		fc.send(&packet.Puback{PacketID: id})
	}
	for range n {
		if err := waitChan(t, results, "publish"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReceiveMaximumBroker publishes many messages at once to a broker
// with a small Receive Maximum.
func TestReceiveMaximumBroker(t *testing.T) {
	o := broker.DefaultOptions()
	o.ReceiveMaximum = 2
	g := runGannet(t, &o)
	c := dial(t, options(g.url(), packet.V5))
	if rm := c.Connack().Properties.ReceiveMaximum; rm != 2 {
		t.Fatalf("broker Receive Maximum %d, want 2", rm)
	}
	in := newInbox()
	subscribe(t, c, in, "many", 2)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := c.Publish(testCtx(t), "many", []byte(fmt.Sprint(i)), client.PublishOptions{QoS: byte(1 + i%2)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 50 {
		in.next(t)
	}
}

// TestInboundReceiveMaximum: a server sending more unacknowledged messages
// than the client's Receive Maximum is disconnected with 0x93.
func TestInboundReceiveMaximum(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V5)
	o.ReceiveMaximum = 1
	release := make(chan struct{})
	o.OnMessage = func(*client.Message) { <-release }
	defer close(release)
	c := dialFake(t, fs, o, &packet.Connack{})
	if !c.connect.Properties.Has(packet.PropReceiveMaximum) || c.connect.Properties.ReceiveMaximum != 1 {
		t.Fatalf("CONNECT Receive Maximum %+v", c.connect.Properties)
	}
	c.fc.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: "a"}, &packet.Publish{QoS: 1, PacketID: 2, Topic: "a"})
	d := readType[*packet.Disconnect](c.fc)
	if d.ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("DISCONNECT %s, want receive maximum exceeded", d.ReasonCode)
	}
	waitChan(t, c.Done(), "client ended")
}

// TestAckAfterHandler: PUBACK goes only once the handler has returned.
func TestAckAfterHandler(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V311)
	entered, release := make(chan struct{}), make(chan struct{})
	o.OnMessage = func(*client.Message) { close(entered); <-release }
	c := dialFake(t, fs, o, &packet.Connack{})
	c.fc.send(&packet.Publish{QoS: 1, PacketID: 7, Topic: "a"})
	waitChan(t, entered, "handler")
	c.fc.nothing()
	close(release)
	if a := readType[*packet.Puback](c.fc); a.PacketID != 7 {
		t.Fatalf("PUBACK %d", a.PacketID)
	}
}

// TestInboundQoS2: a QoS 2 message is delivered once although the server
// sends it again before PUBREL; PUBREC and PUBCOMP answer.
func TestInboundQoS2(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V5)
	in := newInbox()
	o.OnMessage = in.handler
	c := dialFake(t, fs, o, &packet.Connack{})
	p := &packet.Publish{QoS: 2, PacketID: 9, Topic: "q2", Payload: []byte("once")}
	c.fc.send(p)
	in.expect(t, "q2", "once")
	if r := readType[*packet.Pubrec](c.fc); r.PacketID != 9 {
		t.Fatalf("PUBREC %d", r.PacketID)
	}
	p.Dup = true
	c.fc.send(p)
	if r := readType[*packet.Pubrec](c.fc); r.PacketID != 9 {
		t.Fatalf("second PUBREC %d", r.PacketID)
	}
	c.fc.send(&packet.Pubrel{PacketID: 9})
	if r := readType[*packet.Pubcomp](c.fc); r.PacketID != 9 || r.ReasonCode != packet.Success {
		t.Fatalf("PUBCOMP %d %s", r.PacketID, r.ReasonCode)
	}
	in.none(t)
	c.fc.send(&packet.Pubrel{PacketID: 10})
	if r := readType[*packet.Pubcomp](c.fc); r.ReasonCode != packet.PacketIdentifierNotFound {
		t.Fatalf("PUBCOMP for an unknown identifier: %s", r.ReasonCode)
	}
}

// TestInboundTopicAlias: aliases from the server are resolved per
// connection, remapped, and refused above the client's maximum.
func TestInboundTopicAlias(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V5)
	o.TopicAliasMaximum = 4
	in := newInbox()
	o.OnMessage = in.handler
	c := dialFake(t, fs, o, &packet.Connack{})
	if got := c.connect.Properties.TopicAliasMaximum; got != 4 {
		t.Fatalf("CONNECT Topic Alias Maximum %d, want 4", got)
	}
	aliased := func(name string, alias uint16, payload string) *packet.Publish {
		p := &packet.Publish{Topic: name, Payload: []byte(payload)}
		p.Properties.SetUint(packet.PropTopicAlias, uint32(alias))
		return p
	}
	c.fc.send(aliased("al/x", 1, "a"), aliased("", 1, "b"), aliased("al/y", 1, "c"), aliased("", 1, "d"))
	for _, want := range [][2]string{{"al/x", "a"}, {"al/x", "b"}, {"al/y", "c"}, {"al/y", "d"}} {
		m := in.expect(t, want[0], want[1])
		if m.Properties.Has(packet.PropTopicAlias) {
			t.Error("the alias was left in the message properties")
		}
	}
	c.fc.send(aliased("al/z", 5, "too high"))
	if d := readType[*packet.Disconnect](c.fc); d.ReasonCode != packet.TopicAliasInvalid {
		t.Fatalf("DISCONNECT %s, want topic alias invalid", d.ReasonCode)
	}
	waitChan(t, c.Done(), "client ended")

	c = dialFake(t, fs, o, &packet.Connack{})
	c.fc.send(aliased("", 2, "unmapped"))
	if d := readType[*packet.Disconnect](c.fc); d.ReasonCode != packet.ProtocolError {
		t.Fatalf("DISCONNECT %s, want protocol error", d.ReasonCode)
	}
}

// TestOutboundTopicAlias checks on the wire that repeated topics go as
// aliases, up to the server's maximum.
func TestOutboundTopicAlias(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V5)
	o.TopicAliases = true
	ack := &packet.Connack{}
	ack.Properties.SetUint(packet.PropTopicAliasMaximum, 1)
	c := dialFake(t, fs, o, ack)
	for _, name := range []string{"t/1", "t/1", "t/2", "t/1"} {
		publish(t, c.Client, name, "x", client.PublishOptions{})
	}
	type wire struct {
		topic string
		alias uint16
	}
	var got []wire
	for range 4 {
		p := readType[*packet.Publish](c.fc)
		got = append(got, wire{p.Topic, p.Properties.TopicAlias})
	}
	want := []wire{{"t/1", 1}, {"", 1}, {"t/2", 0}, {"", 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("on the wire %v, want %v", got, want)
	}
}

// TestTopicAliasRoundTrip publishes with aliases through a real broker.
func TestTopicAliasRoundTrip(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b target) {
		o := options(b.url, packet.V5)
		o.TopicAliases = true
		pub := dial(t, o)
		if pub.Connack().Properties.TopicAliasMaximum == 0 {
			t.Skip("the broker accepts no topic aliases")
		}
		sub := dial(t, options(b.url, packet.V5))
		in := newInbox()
		name := topicFor(t, "alias")
		subscribe(t, sub, in, name, 1)
		for i := range 3 {
			publish(t, pub, name, fmt.Sprint(i), client.PublishOptions{QoS: byte(i % 2)})
			in.expect(t, name, fmt.Sprint(i))
		}
	})
}

// TestMaxPacketSize: the client does not send what the server's Maximum
// Packet Size forbids.
func TestMaxPacketSize(t *testing.T) {
	o := broker.DefaultOptions()
	o.MaxPacketSize = 1024
	g := runGannet(t, &o)
	c := dial(t, options(g.url(), packet.V5))
	big := make([]byte, 2000)
	for _, qos := range []byte{0, 1} {
		err := c.Publish(testCtx(t), "big", big, client.PublishOptions{QoS: qos})
		if !errors.Is(err, client.ErrPacketTooLarge) {
			t.Fatalf("QoS %d: %v, want ErrPacketTooLarge", qos, err)
		}
	}
	publish(t, c, "small", "fits", client.PublishOptions{QoS: 1})
}

// TestKeepAlive: an idle client pings often enough for the broker to keep
// it past 1.5 x keep-alive.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	g := runGannet(t, nil)
	o := options(g.url(), packet.V5)
	o.KeepAlive = time.Second
	lost := make(chan error, 1)
	o.OnConnectionLost = func(err error) { lost <- err }
	c := dial(t, o)
	in := newInbox()
	subscribe(t, c, in, "ka", 1)
	select {
	case err := <-lost:
		t.Fatalf("connection lost while idle: %v", err)
	case <-time.After(2200 * time.Millisecond):
	}
	publish(t, c, "ka", "still here", client.PublishOptions{QoS: 1})
	in.expect(t, "ka", "still here")
}

// TestServerKeepAlive: a 5.0 server's Server Keep Alive replaces the
// client's [MQTT-3.2.2-21].
func TestServerKeepAlive(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V5)
	o.KeepAlive = time.Hour
	ack := &packet.Connack{}
	ack.Properties.SetUint(packet.PropServerKeepAlive, 1)
	c := dialFake(t, fs, o, ack)
	start := time.Now()
	p := c.fc.read()
	if _, ok := p.(*packet.Pingreq); !ok {
		t.Fatalf("got %s, want PINGREQ", p.Type())
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("PINGREQ after %v with a server keep-alive of 1 s", d)
	}
}

// TestDeadServer: a server that stops answering PINGREQ is detected.
func TestDeadServer(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V311)
	o.KeepAlive = time.Second
	o.PingTimeout = 300 * time.Millisecond
	lost := make(chan error, 1)
	o.OnConnectionLost = func(err error) { lost <- err }
	c := dialFake(t, fs, o, &packet.Connack{})
	if c.connect.KeepAlive != 1 {
		t.Fatalf("CONNECT keep alive %d, want 1", c.connect.KeepAlive)
	}
	start := time.Now()
	if _, ok := c.fc.read().(*packet.Pingreq); !ok {
		t.Fatal("no PINGREQ")
	}
	// No PINGRESP.
	err := waitChan(t, lost, "dead server detected")
	if !errors.Is(err, client.ErrPingTimeout) || !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("err = %v, want ErrPingTimeout and ErrConnectionLost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("detected after %v", d)
	}
	waitChan(t, c.Done(), "client ended")
	if !strings.Contains(c.Err().Error(), "PINGRESP") {
		t.Errorf("Err %q does not say what happened", c.Err())
	}
}
