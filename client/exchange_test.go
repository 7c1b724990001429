package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// A held QoS 2 exchange goes out with the caller's packet identifier and
// DUP [MQTT-3.3.1-1], reports PUBREC, and sends PUBREL only once released
// [MQTT-4.3.3-4]; a PUBREC'd exchange is not resent as PUBLISH on a
// reconnect that keeps the session [MQTT-4.3.3-6] [MQTT-4.4.0-1].
func TestPublishHeldOverTheWire(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V311)
	o.ResumeSession = true
	o.ClientID = "held"
	o.AutoReconnect = true
	o.ReconnectMin, o.ReconnectMax = 10*time.Millisecond, 20*time.Millisecond
	c := dialFake(t, fs, o, &packet.Connack{})
	fc := c.fc

	x, err := c.PublishHeld("relay/a", []byte("one"), client.PublishOptions{QoS: 2, PacketID: 700, Dup: true})
	if err != nil {
		t.Fatal(err)
	}
	p := readType[*packet.Publish](fc)
	if p.PacketID != 700 || !p.Dup || p.QoS != 2 {
		t.Fatalf("PUBLISH id %d dup %v qos %d, want 700, DUP, QoS 2", p.PacketID, p.Dup, p.QoS)
	}
	if _, err := c.PublishHeld("relay/a", []byte("one"), client.PublishOptions{QoS: 2, PacketID: 700}); !errors.Is(err, client.ErrPacketIDInUse) {
		t.Fatalf("a new message with an identifier in flight: %v, want ErrPacketIDInUse", err)
	}
	if _, err := c.PublishAsync("relay/b", nil, client.PublishOptions{QoS: 1, PacketID: 700}); !errors.Is(err, client.ErrPacketIDInUse) {
		t.Fatalf("QoS 1 with an identifier in flight: %v, want ErrPacketIDInUse", err)
	}
	// Sent again by the caller (DUP, same identifier): the same exchange,
	// not a second PUBLISH.
	again, err := c.PublishHeld("relay/a", []byte("one"), client.PublishOptions{QoS: 2, PacketID: 700, Dup: true})
	if err != nil || again.PacketID() != 700 {
		t.Fatalf("DUP of the exchange in flight: %v, id %d", err, again.PacketID())
	}
	fc.send(&packet.Pubrec{PacketID: 700})
	ctx := testCtx(t)
	if err := x.Received(ctx); err != nil {
		t.Fatalf("Received: %v", err)
	}
	if err := again.Received(ctx); err != nil {
		t.Fatalf("Received (joined): %v", err)
	}
	fc.nothing() // no PUBREL before Release

	// Connection lost: the session is kept, nothing is resent until the
	// caller releases, and then PUBREL, never PUBLISH.
	fc.nc.Close()
	fc2, connect := fs.accept()
	if connect.CleanStart {
		t.Fatal("reconnect without the session")
	}
	fc2.send(&packet.Connack{SessionPresent: true})
	fc2.nothing()
	x.Release()
	rel := readType[*packet.Pubrel](fc2)
	if rel.PacketID != 700 {
		t.Fatalf("PUBREL id %d, want 700", rel.PacketID)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = x.Wait(short)
	cancel()
	if err == nil {
		t.Fatal("complete before PUBCOMP")
	}
	fc2.send(&packet.Pubcomp{PacketID: 700})
	if err := x.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	// The identifier is free again [MQTT-4.3.3-12].
	if _, err := c.PublishAsync("relay/b", nil, client.PublishOptions{QoS: 1, PacketID: 700}); err != nil {
		t.Fatalf("identifier still in use after PUBCOMP: %v", err)
	}
	if p := readType[*packet.Publish](fc2); p.PacketID != 700 || p.Dup {
		t.Fatalf("PUBLISH id %d dup %v, want 700 without DUP", p.PacketID, p.Dup)
	}
}

// ResumeRelease sends PUBREL for an identifier the client never sent a
// PUBLISH for in this run, and completes at PUBCOMP [MQTT-4.3.3-5].
func TestResumeReleaseOverTheWire(t *testing.T) {
	fs := newFakeServer(t)
	c := dialFake(t, fs, options(fs.url(), packet.V5), &packet.Connack{SessionPresent: true})
	x, err := c.ResumeRelease(9)
	if err != nil {
		t.Fatal(err)
	}
	if rel := readType[*packet.Pubrel](c.fc); rel.PacketID != 9 {
		t.Fatalf("PUBREL id %d, want 9", rel.PacketID)
	}
	// Released again while in flight: the same exchange, no second PUBREL.
	if y, err := c.ResumeRelease(9); err != nil || y.PacketID() != 9 {
		t.Fatalf("ResumeRelease again: %v", err)
	}
	if _, err := c.PublishAsync("a", nil, client.PublishOptions{QoS: 1, PacketID: 9}); !errors.Is(err, client.ErrPacketIDInUse) {
		t.Fatalf("PUBLISH with an identifier awaiting PUBCOMP: %v, want ErrPacketIDInUse", err)
	}
	c.fc.send(&packet.Pubcomp{PacketID: 9, ReasonCode: packet.PacketIdentifierNotFound})
	err = x.Wait(testCtx(t))
	var re *client.ReasonError
	if !errors.As(err, &re) || re.Code != packet.PacketIdentifierNotFound {
		t.Fatalf("Wait: %v, want Packet Identifier Not Found", err)
	}
}

// With OnRelease, PUBREL is handed to the caller, for known and unknown
// identifiers, and PUBCOMP goes only when it completes [MQTT-4.3.3-11].
func TestOnReleaseOverTheWire(t *testing.T) {
	fs := newFakeServer(t)
	o := options(fs.url(), packet.V311)
	o.ManualAck = true
	msgs := make(chan *client.Message, 4)
	o.OnMessage = func(m *client.Message) { msgs <- m }
	type rel struct {
		id       uint16
		complete func()
	}
	rels := make(chan rel, 4)
	o.OnRelease = func(id uint16, complete func()) { rels <- rel{id, complete} }
	c := dialFake(t, fs, o, &packet.Connack{})
	fc := c.fc
	fc.send(&packet.Publish{QoS: 2, PacketID: 3, Topic: "in/a", Payload: []byte("x")})
	m := waitChan(t, msgs, "the message")
	if m.PacketID != 3 {
		t.Fatalf("Message.PacketID %d, want 3", m.PacketID)
	}
	m.Ack()
	if p := readType[*packet.Pubrec](fc); p.PacketID != 3 {
		t.Fatalf("PUBREC id %d", p.PacketID)
	}
	fc.send(&packet.Pubrel{PacketID: 3}, &packet.Pubrel{PacketID: 77})
	r1, r2 := waitChan(t, rels, "PUBREL 3"), waitChan(t, rels, "PUBREL 77")
	if r1.id != 3 || r2.id != 77 {
		t.Fatalf("released %d, %d; want 3, 77", r1.id, r2.id)
	}
	fc.nothing() // no PUBCOMP before complete
	r2.complete()
	r1.complete()
	r1.complete() // once
	if p := readType[*packet.Pubcomp](fc); p.PacketID != 77 {
		t.Fatalf("PUBCOMP id %d, want 77", p.PacketID)
	}
	if p := readType[*packet.Pubcomp](fc); p.PacketID != 3 {
		t.Fatalf("PUBCOMP id %d, want 3", p.PacketID)
	}
	fc.nothing()
}

// Against Gannet over a real socket: a held exchange interrupted after
// PUBREC is taken up by a new client of the same session, which sends the
// PUBLISH again with DUP and the same identifier (not delivered again,
// [MQTT-4.3.3-10]) and then PUBREL; the subscriber gets the message once.
func TestPublishHeldResumedByANewClient(t *testing.T) {
	g := runGannet(t, nil)
	in := newInbox()
	so := options(g.url(), packet.V5)
	s := dial(t, so)
	subscribe(t, s, in, "held/#", 2)

	o := options(g.url(), packet.V5)
	o.ClientID = "held-relay"
	o.ResumeSession = true
	o.Properties.SetUint(packet.PropSessionExpiry, 3600)
	a := dial(t, o)
	x, err := a.PublishHeld("held/1", []byte("once"), client.PublishOptions{QoS: 2, PacketID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Received(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	in.expect(t, "held/1", "once")
	a.Close() // a crash: the server keeps 4242 awaiting PUBREL

	b := dial(t, o)
	y, err := b.PublishHeld("held/1", []byte("once"), client.PublishOptions{QoS: 2, PacketID: 4242, Dup: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Received(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	y.Release()
	if err := y.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	in.none(t)
	// Released: a PUBREL of it again is for an identifier the server no
	// longer knows.
	z, err := b.ResumeRelease(4242)
	if err != nil {
		t.Fatal(err)
	}
	var re *client.ReasonError
	if err := z.Wait(testCtx(t)); !errors.As(err, &re) || re.Code != packet.PacketIdentifierNotFound {
		t.Fatalf("second release: %v, want Packet Identifier Not Found", err)
	}
	// Now a new message with that identifier is delivered [MQTT-4.3.3-12].
	publish(t, b, "held/2", "new", client.PublishOptions{QoS: 2, PacketID: 4242})
	in.expect(t, "held/2", "new")
}
