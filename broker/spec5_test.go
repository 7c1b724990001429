package broker_test

// MQTT 5.0 statements that no other test checked, each over a real socket
// against an in-process broker. Every citation in this file is a 5.0
// identifier (the file name says so; see docs/spec-coverage.md).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
)

// spec5Str encodes a UTF-8 string field: two length bytes, then s.
func spec5Str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// spec5Bad is a string field holding ill-formed UTF-8.
var spec5Bad = []byte{0, 2, 'a', 0xff}

// spec5Packet frames body behind the fixed header byte h.
func spec5Packet(h byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := []byte{h}
	n := len(b)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, b...)
}

// spec5RawConnect is a 5.0 CONNECT with the given Connect Flags and payload
// fields, Keep Alive 60 and no properties.
func spec5RawConnect(flags byte, payload ...[]byte) []byte {
	head := append(spec5Str("MQTT"), 5, flags, 0, 60, 0)
	return spec5Packet(0x10, append([][]byte{head}, payload...)...)
}

// spec5ExpectRefused reads until the broker closes the connection and
// fails unless it sent nothing, or only one CONNACK with a reason code of
// 0x80 or above [MQTT-3.1.4-1] [MQTT-4.13.2-1].
func spec5ExpectRefused(t *testing.T, c *rawClient) {
	t.Helper()
	got := c.expectClosed(waitFor)
	switch {
	case len(got) == 0:
	case len(got) == 1 && got[0].Type() == packet.CONNACK && got[0].(*packet.Connack).ReasonCode.IsError():
		if got[0].(*packet.Connack).SessionPresent {
			t.Errorf("refusing CONNACK with Session Present 1")
		}
	default:
		t.Fatalf("broker sent %d packets (first %s %s), want a close, with at most a refusing CONNACK", len(got), got[0].Type(), describe(got[0]))
	}
}

// A CONNECT that breaks section 3.1 is refused and the connection closed
// [MQTT-3.1.4-1] [MQTT-4.13.1-1]; the broker keeps serving others.
func TestSpec5ConnectMalformed(t *testing.T) {
	b := runBroker(t, testOptions())
	id := spec5Str("m")
	cases := []struct {
		name string
		raw  []byte
	}{
		{"Will Flag 1 without will properties, topic or payload [MQTT-3.1.2-9]", spec5RawConnect(0x06, id)},
		{"Will Flag 1 without will payload [MQTT-3.1.2-9]", spec5RawConnect(0x06, id, []byte{0}, spec5Str("w"))},
		{"Will QoS 1 with Will Flag 0 [MQTT-3.1.2-11]", spec5RawConnect(0x0a, id)},
		{"Will QoS 3 [MQTT-3.1.2-12]", spec5RawConnect(0x1e, id, []byte{0}, spec5Str("w"), spec5Str("x"))},
		{"Will Retain with Will Flag 0 [MQTT-3.1.2-13]", spec5RawConnect(0x22, id)},
		{"User Name without User Name Flag [MQTT-3.1.2-16]", spec5RawConnect(0x02, id, spec5Str("u"))},
		{"User Name Flag without User Name [MQTT-3.1.2-17]", spec5RawConnect(0x82, id)},
		{"Password without Password Flag [MQTT-3.1.2-18]", spec5RawConnect(0x82, id, spec5Str("u"), spec5Str("p"))},
		{"Password Flag without Password [MQTT-3.1.2-19]", spec5RawConnect(0xc2, id, spec5Str("u"))},
		{"reserved Connect Flag [MQTT-3.1.2-3]", spec5RawConnect(0x03, id)},
		{"no ClientID [MQTT-3.1.3-3]", spec5RawConnect(0x02)},
		{"ClientID cut short [MQTT-3.1.3-3]", spec5RawConnect(0x02, []byte{0, 5, 'a'})},
		{"ClientID ill-formed UTF-8 [MQTT-3.1.3-4]", spec5RawConnect(0x02, spec5Bad)},
		{"Will Topic ill-formed UTF-8 [MQTT-3.1.3-11]", spec5RawConnect(0x06, id, []byte{0}, spec5Bad, spec5Str("x"))},
		{"User Name ill-formed UTF-8 [MQTT-3.1.3-12]", spec5RawConnect(0x82, id, spec5Bad)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := v5Dial(t, b.Addr)
			if err := c.write(tc.raw); err != nil {
				t.Fatal(err)
			}
			spec5ExpectRefused(t, c)
		})
	}
	expectServing(t, b)

	// 5.0 allows a Password without a User Name [MQTT-3.1.2-19].
	c := v5Dial(t, b.Addr)
	if err := c.write(spec5RawConnect(0x42, spec5Str("pw-only"), spec5Str("secret"))); err != nil {
		t.Fatal(err)
	}
	if ack := expectPacket[*packet.Connack](c); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %v for a Password without User Name, want success [MQTT-3.1.2-19]", ack.ReasonCode)
	}
}

// spec5Recorder is an Authenticator that admits everyone and records what
// each client presented.
type spec5Recorder struct {
	mu   sync.Mutex
	seen map[string]auth.Client
}

func (r *spec5Recorder) Authenticate(_ context.Context, c *auth.Client) (auth.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[c.ClientID] = *c
	return auth.Allow, nil
}

// The payload fields are read in their order: ClientID, will properties,
// Will Topic, Will Payload, User Name, Password [MQTT-3.1.3-1]. The will is
// stored with the session [MQTT-3.1.2-7] and published when the connection
// drops: as a retained message with Will Retain 1 [MQTT-3.1.2-15], as an
// ordinary one with Will Retain 0 [MQTT-3.1.2-14].
func TestSpec5ConnectFieldsAndWill_MQTT_3_1_3_1(t *testing.T) {
	rec := &spec5Recorder{seen: map[string]auth.Client{}}
	o := testOptions()
	o.Authenticator = rec
	b := runBroker(t, o)
	named := func(id string) *rawClient { // anonymous clients are refused once an Authenticator is set
		p := v5Connect(id)
		p.UsernameFlag, p.Username = true, "u"
		c, _ := v5ConnectOK(t, b.Addr, p)
		return c
	}
	sub := named("spec5-will-sub")
	sub.v5Sub(0, packet.Subscription{Filter: "will5/#", QoS: 1, RetainAsPublished: true})

	for _, retain := range []bool{true, false} {
		id := fmt.Sprintf("spec5-will-%v", retain)
		p := v5Connect(id)
		p.WillFlag = true
		p.Will = packet.Will{Topic: "will5/" + id, Payload: []byte("gone"), QoS: 1, Retain: retain}
		p.Will.Properties.User = v5UserProps("k", "v")
		p.UsernameFlag, p.Username = true, "user-"+id
		p.PasswordFlag, p.Password = true, []byte("pass-"+id)
		w, _ := v5ConnectOK(t, b.Addr, p)
		rec.mu.Lock()
		got := rec.seen[id]
		rec.mu.Unlock()
		if got.Username != "user-"+id || string(got.Password) != "pass-"+id {
			t.Fatalf("authenticator saw user %q password %q [MQTT-3.1.3-1]", got.Username, got.Password)
		}
		w.nc.Close() // no DISCONNECT: the will goes out
		m := sub.expectPublish("will5/"+id, "gone")
		if m.Retain != retain {
			t.Fatalf("will published with RETAIN %v, want %v [MQTT-3.1.2-14] [MQTT-3.1.2-15]", m.Retain, retain)
		}
		sub.ack(m)
	}
	late := named("spec5-will-late")
	late.v5Sub(0, packet.Subscription{Filter: "will5/#", QoS: 1})
	m := late.expectPublish("will5/spec5-will-true", "gone")
	if !m.Retain {
		t.Fatalf("retained will delivered with RETAIN 0 [MQTT-3.1.2-15]")
	}
	late.ack(m)
	late.sync() // the Will Retain 0 will was not retained [MQTT-3.1.2-14]
}

// spec5ReadAll reads what the broker sends until it closes (or waitFor).
func spec5ReadAll(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(waitFor))
	b, err := io.ReadAll(nc)
	if err != nil && !isClosed(err) {
		t.Fatalf("connection not closed: %v (read % x)", err, b)
	}
	return b
}

// A protocol name other than "MQTT" [MQTT-3.1.2-1], or a Protocol Version
// the server does not support [MQTT-3.1.2-2], is refused, at most with a
// CONNACK saying Unsupported Protocol Version, and the connection closed.
func TestSpec5ProtocolNameAndVersion_MQTT_3_1_2_1(t *testing.T) {
	b := runBroker(t, testOptions())
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"name MQTX [MQTT-3.1.2-1]", spec5Packet(0x10, spec5Str("MQTX"), []byte{5, 2, 0, 60, 0}, spec5Str("v"))},
		{"version 6 [MQTT-3.1.2-2]", spec5Packet(0x10, spec5Str("MQTT"), []byte{6, 2, 0, 60, 0}, spec5Str("v"))},
		{"version 0 [MQTT-3.1.2-2]", spec5Packet(0x10, spec5Str("MQTT"), []byte{0, 2, 0, 60, 0}, spec5Str("v"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := v5Dial(t, b.Addr)
			if err := c.write(tc.raw); err != nil {
				t.Fatal(err)
			}
			got := spec5ReadAll(t, c.nc)
			if len(got) > 0 && !(got[0] == 0x20 && len(got) >= 4 && (got[3] == 0x84 || got[3] == 0x01)) {
				t.Fatalf("broker sent % x, want nothing or CONNACK Unsupported Protocol Version", got)
			}
		})
	}
	expectServing(t, b)
}

// The server accepts any ClientID of 1 to 23 characters from 0-9, a-z,
// A-Z [MQTT-3.1.3-5]; a ClientID it refuses gets CONNACK 0x85 and a close
// [MQTT-3.1.3-8] [MQTT-4.13.2-1].
func TestSpec5ClientIdentifiers_MQTT_3_1_3_5(t *testing.T) {
	o := testOptions()
	o.MaxClientIDLength = 23
	b := runBroker(t, o)
	for _, id := range []string{"0", "Z", "0123456789abcdefghijXYZ", "abcdefghijklmnopqrstuvw", "ABCDEFGHIJKLMNOPQRSTUVW"} {
		c := v5Client(t, b, id)
		c.sync()
	}
	v5ExpectConnackRefused(t, b.Addr, v5Connect("0123456789abcdefghijXYZ0"), packet.ClientIdentifierNotValid)
}

// The server's first packet is the CONNACK, with reason 0x00 and the
// reserved acknowledge flag bits 0, even when the client sends more packets
// behind its CONNECT [MQTT-3.2.0-1] [MQTT-3.1.4-5] [MQTT-3.2.2-1]; and it
// sends only one CONNACK: a second CONNECT gets a DISCONNECT, not another
// CONNACK [MQTT-3.2.0-2]. After its DISCONNECT the server sends nothing
// more [MQTT-3.14.4-1].
func TestSpec5ConnackFirstAndOnce_MQTT_3_2_0_1(t *testing.T) {
	b := runBroker(t, testOptions())
	c := v5Dial(t, b.Addr)
	c.send(v5Connect("spec5-first"),
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "first/t", QoS: 1}}},
		&packet.Pingreq{})
	head := make([]byte, 3)
	c.nc.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.ReadFull(c.nc, head); err != nil {
		t.Fatal(err)
	}
	if head[0] != 0x20 || head[2]&0xfe != 0 {
		t.Fatalf("first bytes % x, want a CONNACK with acknowledge flags bits 7-1 zero [MQTT-3.2.0-1] [MQTT-3.2.2-1]", head)
	}
	c.Unread(head)
	if ack := expectPacket[*packet.Connack](c); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %v, want success [MQTT-3.1.4-5]", ack.ReasonCode)
	}
	expectPacket[*packet.Suback](c)
	expectPacket[*packet.Pingresp](c)
	c.send(v5Connect("spec5-first"))
	c.v5ExpectDisconnect(packet.ProtocolError)
}

// A first packet other than CONNECT closes the connection, without
// CONNACK or DISCONNECT [MQTT-3.1.0-1] [MQTT-3.14.0-1].
func TestSpec5FirstPacketNotConnect_MQTT_3_1_0_1(t *testing.T) {
	b := runBroker(t, testOptions())
	for _, p := range []packet.Packet{
		&packet.Pingreq{},
		&packet.Publish{Topic: "x", Payload: []byte("y")},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "x"}}},
		&packet.Auth{ReasonCode: packet.ContinueAuthentication},
	} {
		c := v5Dial(t, b.Addr)
		c.send(p)
		c.expectClosedSilently(waitFor)
	}
	expectServing(t, b)
}

// A refused CONNECT: nothing sent after it is processed [MQTT-3.1.4-6].
func TestSpec5RefusedConnectIgnoresRest_MQTT_3_1_4_6(t *testing.T) {
	o := testOptions()
	o.MaxClientIDLength = 23
	b := runBroker(t, o)
	c := v5Dial(t, b.Addr)
	c.send(v5Connect(strings.Repeat("x", 30)), &packet.Publish{Topic: "refused5/t", Payload: []byte("x"), Retain: true})
	spec5ExpectRefused(t, c)
	s := v5Client(t, b, "spec5-refused-sub")
	s.v5Sub(0, packet.Subscription{Filter: "refused5/#"})
	s.sync()
}

// Enhanced authentication policed on input: before CONNACK only AUTH or
// DISCONNECT [MQTT-3.1.2-30]; the client's AUTH during the exchange carries
// 0x18 [MQTT-4.12.0-3]; no AUTH from a client that named no method
// [MQTT-4.12.0-7]; re-authentication keeps the method [MQTT-4.12.1-1]; a
// failed re-authentication ends with DISCONNECT and a close
// [MQTT-4.12.1-2].
func TestSpec5EnhancedAuthProtocol(t *testing.T) {
	b := scramBroker(t)
	start := func(t *testing.T, id, password string) (*rawClient, *auth.SCRAMClient, *packet.Auth) {
		t.Helper()
		cl := &auth.SCRAMClient{User: "carol", Password: password}
		c := v5Dial(t, b.Addr)
		c.send(scramConnect(id, cl.First()))
		return c, cl, expectPacket[*packet.Auth](c)
	}
	reply := func(rc packet.ReasonCode, method string, data []byte) *packet.Auth {
		a := &packet.Auth{ReasonCode: rc}
		a.Properties.SetString(packet.PropAuthMethod, method)
		a.Properties.SetBinary(packet.PropAuthData, data)
		return a
	}
	login := func(t *testing.T, id string) *rawClient {
		t.Helper()
		c, cl, a := start(t, id, "s3cret")
		final, err := cl.Final(a.Properties.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		c.send(reply(packet.ContinueAuthentication, "SCRAM-SHA-256", final))
		if ack := expectPacket[*packet.Connack](c); ack.ReasonCode != packet.Success {
			t.Fatalf("CONNACK %v", ack.ReasonCode)
		}
		return c
	}

	t.Run("PUBLISH before CONNACK [MQTT-3.1.2-30]", func(t *testing.T) {
		c, _, _ := start(t, "spec5-auth-early", "s3cret")
		c.send(&packet.Publish{Topic: "early/t", Payload: []byte("x")})
		spec5ExpectRefused(t, c)
	})
	t.Run("AUTH 0x00 during the exchange [MQTT-4.12.0-3]", func(t *testing.T) {
		c, cl, a := start(t, "spec5-auth-rc", "s3cret")
		final, _ := cl.Final(a.Properties.AuthData)
		c.send(reply(packet.Success, "SCRAM-SHA-256", final))
		spec5ExpectRefused(t, c)
	})
	t.Run("AUTH without a method in CONNECT [MQTT-4.12.0-7]", func(t *testing.T) {
		c := v5Client(t, b, "spec5-auth-none")
		c.send(&packet.Auth{ReasonCode: packet.ReAuthenticate})
		c.v5ExpectDisconnect(packet.ProtocolError)
	})
	t.Run("re-authentication with another method [MQTT-4.12.1-1]", func(t *testing.T) {
		c := login(t, "spec5-auth-other")
		c.send(reply(packet.ReAuthenticate, "GSSAPI", []byte("x")))
		c.v5ExpectDisconnect(packet.ProtocolError)
	})
	t.Run("failed re-authentication [MQTT-4.12.1-2]", func(t *testing.T) {
		c := login(t, "spec5-auth-fail")
		re := &auth.SCRAMClient{User: "carol", Password: "wrong"}
		c.send(reply(packet.ReAuthenticate, "SCRAM-SHA-256", re.First()))
		a := expectPacket[*packet.Auth](c)
		final, _ := re.Final(a.Properties.AuthData)
		c.send(reply(packet.ContinueAuthentication, "SCRAM-SHA-256", final))
		got := c.expectClosed(waitFor)
		if len(got) != 1 || got[0].Type() != packet.DISCONNECT || !got[0].(*packet.Disconnect).ReasonCode.IsError() {
			t.Fatalf("got %d packets, want one DISCONNECT with an error code, then the close [MQTT-4.12.1-2]", len(got))
		}
	})
}

// Identifiers: SUBACK and UNSUBACK echo the SUBSCRIBE's and UNSUBSCRIBE's
// [MQTT-2.2.1-6] [MQTT-3.8.4-2]; the server's PUBACK, PUBREC and PUBCOMP
// echo the client's PUBLISH and PUBREL [MQTT-2.2.1-5]; every SUBSCRIBE and
// UNSUBSCRIBE is answered [MQTT-3.8.4-1] [MQTT-3.10.4-4].
func TestSpec5PacketIdentifiers_MQTT_2_2_1_5(t *testing.T) {
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "spec5-ids")
	for _, id := range []uint16{1, 0x7fff, 0xffff} {
		c.send(&packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: "ids/t", QoS: 2}}})
		if a := expectPacket[*packet.Suback](c); a.PacketID != id {
			t.Fatalf("SUBACK id %d, want %d [MQTT-2.2.1-6]", a.PacketID, id)
		}
		c.send(&packet.Unsubscribe{PacketID: id, Filters: []string{"ids/t"}})
		if a := expectPacket[*packet.Unsuback](c); a.PacketID != id {
			t.Fatalf("UNSUBACK id %d, want %d [MQTT-2.2.1-6]", a.PacketID, id)
		}
		c.send(&packet.Publish{Topic: "ids/p", QoS: 1, PacketID: id})
		if a := expectPacket[*packet.Puback](c); a.PacketID != id {
			t.Fatalf("PUBACK id %d, want %d [MQTT-2.2.1-5]", a.PacketID, id)
		}
		c.send(&packet.Publish{Topic: "ids/p", QoS: 2, PacketID: id})
		if a := expectPacket[*packet.Pubrec](c); a.PacketID != id {
			t.Fatalf("PUBREC id %d, want %d [MQTT-2.2.1-5]", a.PacketID, id)
		}
		c.send(&packet.Pubrel{PacketID: id})
		if a := expectPacket[*packet.Pubcomp](c); a.PacketID != id {
			t.Fatalf("PUBCOMP id %d, want %d [MQTT-2.2.1-5]", a.PacketID, id)
		}
	}
}

// spec5Reconnect closes c without DISCONNECT, waits until the broker has
// let go of the session, and connects again with Clean Start 0.
func spec5Reconnect(t *testing.T, b *testBroker, c *rawClient, id string) *rawClient {
	t.Helper()
	c.nc.Close()
	b.waitOffline(t, id)
	c, ack := v5ConnectOK(t, b.Addr, v5Persistent(id, false, 300))
	if !ack.SessionPresent {
		t.Fatalf("session of %q lost", id)
	}
	return c
}

// The server as QoS 1 sender: each message in flight gets a non-zero
// identifier no other one uses [MQTT-2.2.1-4] [MQTT-4.3.2-1], goes out at
// QoS 1 with DUP 0 [MQTT-4.3.2-2] and stays unacknowledged until its PUBACK
// [MQTT-4.3.2-3]: after a reconnection it is sent again with DUP 1
// [MQTT-3.3.1-1], after the PUBACK never.
func TestSpec5QoS1Sender_MQTT_4_3_2_1(t *testing.T) {
	b := runBroker(t, testOptions())
	const id = "spec5-q1s"
	s, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	s.v5Sub(0, packet.Subscription{Filter: "q1s5/t", QoS: 1})
	p := v5Client(t, b, "spec5-q1s-pub")
	ids := map[uint16]string{}
	for i := range 3 {
		p.v5Pub("q1s5/t", fmt.Sprint(i), 1, false)
		m := s.expectPublish("q1s5/t", fmt.Sprint(i))
		if m.QoS != 1 || m.Dup || m.PacketID == 0 {
			t.Fatalf("first sending %s, want QoS 1, DUP 0, non-zero id [MQTT-4.3.2-2]", describe(m))
		}
		if prev, dup := ids[m.PacketID]; dup {
			t.Fatalf("identifier %d of message %d in use by %q [MQTT-2.2.1-4]", m.PacketID, i, prev)
		}
		ids[m.PacketID] = fmt.Sprint(i)
	}
	s = spec5Reconnect(t, b, s, id)
	for i := range 3 {
		m := s.expectPublish("q1s5/t", fmt.Sprint(i))
		if !m.Dup || ids[m.PacketID] != fmt.Sprint(i) {
			t.Fatalf("re-sent %s, want DUP 1 and the original identifier [MQTT-3.3.1-1] [MQTT-4.3.2-3]", describe(m))
		}
		s.ack(m)
	}
	s.sync()
	s = spec5Reconnect(t, b, s, id)
	s.sync() // acknowledged: not sent again [MQTT-4.3.2-3]
}

// The server as QoS 1 receiver answers PUBACK with the identifier
// [MQTT-4.3.2-4] [MQTT-3.3.4-1]; after it, a PUBLISH with that identifier
// is a new message whatever its DUP flag [MQTT-4.3.2-5]. The DUP flag of a
// forwarded copy is not copied from the inbound PUBLISH [MQTT-3.3.1-3].
func TestSpec5QoS1Receiver_MQTT_4_3_2_4(t *testing.T) {
	b := runBroker(t, testOptions())
	s := v5Client(t, b, "spec5-q1r-sub")
	s.v5Sub(0, packet.Subscription{Filter: "q1r5/t", QoS: 1})
	p := v5Client(t, b, "spec5-q1r-pub")
	for i, dup := range []bool{true, true, false} {
		p.send(&packet.Publish{Topic: "q1r5/t", Payload: []byte(fmt.Sprint(i)), QoS: 1, PacketID: 7, Dup: dup})
		if a := expectPacket[*packet.Puback](p); a.PacketID != 7 {
			t.Fatalf("PUBACK id %d, want 7 [MQTT-4.3.2-4]", a.PacketID)
		}
		m := s.expectPublish("q1r5/t", fmt.Sprint(i))
		if m.Dup {
			t.Fatalf("forwarded copy has DUP 1, copied from the publisher [MQTT-3.3.1-3]")
		}
		s.ack(m)
	}
	// QoS 0 gets no answer [MQTT-3.3.4-1].
	p.send(&packet.Publish{Topic: "q1r5/t", Payload: []byte("q0")})
	p.sync()
}

// The server as QoS 2 sender: non-zero unused identifier, QoS 2, DUP 0
// [MQTT-4.3.3-1] [MQTT-4.3.3-2]; the PUBLISH is unacknowledged until PUBREC
// [MQTT-4.3.3-3] (re-sent with DUP 1 after a reconnection); then the PUBREL
// is unacknowledged until PUBCOMP [MQTT-4.3.3-5], and once PUBREL has gone
// out the PUBLISH is never sent again [MQTT-4.3.3-6].
func TestSpec5QoS2Sender_MQTT_4_3_3_1(t *testing.T) {
	b := runBroker(t, testOptions())
	const id = "spec5-q2s"
	s, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	s.v5Sub(0, packet.Subscription{Filter: "q2s5/t", QoS: 2})
	p := v5Client(t, b, "spec5-q2s-pub")
	p.v5Pub("q2s5/t", "a", 2, false)
	p.v5Pub("q2s5/t", "b", 2, false)
	m1 := s.expectPublish("q2s5/t", "a")
	m2 := s.expectPublish("q2s5/t", "b")
	for _, m := range []*packet.Publish{m1, m2} {
		if m.QoS != 2 || m.Dup || m.PacketID == 0 {
			t.Fatalf("first sending %s, want QoS 2, DUP 0, non-zero id [MQTT-4.3.3-2]", describe(m))
		}
	}
	if m1.PacketID == m2.PacketID {
		t.Fatalf("two messages in flight share identifier %d [MQTT-4.3.3-1]", m1.PacketID)
	}
	s = spec5Reconnect(t, b, s, id)
	for _, want := range []*packet.Publish{m1, m2} {
		m := s.expectPublish("q2s5/t", string(want.Payload))
		if !m.Dup || m.PacketID != want.PacketID {
			t.Fatalf("re-sent %s, want DUP 1 and id %d [MQTT-4.3.3-3]", describe(m), want.PacketID)
		}
	}
	s.send(&packet.Pubrec{PacketID: m1.PacketID})
	if rel := expectPacket[*packet.Pubrel](s); rel.PacketID != m1.PacketID {
		t.Fatalf("PUBREL id %d, want %d [MQTT-4.3.3-4]", rel.PacketID, m1.PacketID)
	}
	s = spec5Reconnect(t, b, s, id)
	// m1: only its PUBREL again [MQTT-4.3.3-5] [MQTT-4.3.3-6]; m2: its PUBLISH.
	var sawRel, sawPub bool
	for range 2 {
		switch p := s.expect().(type) {
		case *packet.Pubrel:
			if p.PacketID != m1.PacketID {
				t.Fatalf("PUBREL id %d, want %d", p.PacketID, m1.PacketID)
			}
			sawRel = true
		case *packet.Publish:
			if p.PacketID == m1.PacketID {
				t.Fatalf("PUBLISH re-sent after its PUBREL [MQTT-4.3.3-6]")
			}
			sawPub = true
			s.send(&packet.Pubrec{PacketID: p.PacketID})
			expectPacket[*packet.Pubrel](s)
			s.send(&packet.Pubcomp{PacketID: p.PacketID})
		}
	}
	if !sawRel || !sawPub {
		t.Fatalf("after reconnecting: PUBREL %v, PUBLISH %v; want both [MQTT-4.3.3-5]", sawRel, sawPub)
	}
	s.send(&packet.Pubcomp{PacketID: m1.PacketID})
	s.sync()
	s = spec5Reconnect(t, b, s, id)
	s.sync() // both complete: nothing is sent again
}

// The server as QoS 2 receiver: PUBREC with the identifier [MQTT-4.3.3-8]
// [MQTT-3.3.4-1]; until PUBREL a repeated PUBLISH gets another PUBREC and
// is not delivered again [MQTT-4.3.3-10]; PUBCOMP answers PUBREL
// [MQTT-4.3.3-11]; and after its PUBCOMP a PUBLISH with that identifier is
// a new message [MQTT-4.3.3-12].
func TestSpec5QoS2Receiver_MQTT_4_3_3_8(t *testing.T) {
	b := runBroker(t, testOptions())
	s := v5Client(t, b, "spec5-q2r-sub")
	s.v5Sub(0, packet.Subscription{Filter: "q2r5/t", QoS: 0})
	p := v5Client(t, b, "spec5-q2r-pub")
	for i := range 2 {
		p.send(&packet.Publish{Topic: "q2r5/t", Payload: []byte(fmt.Sprint(i)), QoS: 2, PacketID: 5})
		if a := expectPacket[*packet.Pubrec](p); a.PacketID != 5 || a.ReasonCode.IsError() {
			t.Fatalf("PUBREC id %d %v, want 5 success [MQTT-4.3.3-8]", a.PacketID, a.ReasonCode)
		}
		p.send(&packet.Publish{Topic: "q2r5/t", Payload: []byte(fmt.Sprint(i)), QoS: 2, PacketID: 5, Dup: true})
		if a := expectPacket[*packet.Pubrec](p); a.PacketID != 5 {
			t.Fatalf("repeated PUBLISH: PUBREC id %d, want 5 [MQTT-4.3.3-10]", a.PacketID)
		}
		p.send(&packet.Pubrel{PacketID: 5})
		if c := expectPacket[*packet.Pubcomp](p); c.PacketID != 5 {
			t.Fatalf("PUBCOMP id %d, want 5 [MQTT-4.3.3-11]", c.PacketID)
		}
		s.expectPublish("q2r5/t", fmt.Sprint(i)) // once, and again after PUBCOMP [MQTT-4.3.3-12]
		s.sync()                                 // not twice [MQTT-4.3.3-10]
	}
}

// Message expiry and QoS 2: once the server has sent a QoS 2 PUBLISH it no
// longer expires it, so a resumed session still gets it [MQTT-4.3.3-7];
// and as receiver it completes the exchange for a message that has
// expired [MQTT-4.3.3-13].
func TestSpec5QoS2IgnoresExpiry_MQTT_4_3_3_7(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "spec5-q2x"
	s, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	s.v5Sub(0, packet.Subscription{Filter: "q2x5/t", QoS: 2})
	p := v5Client(t, b, "spec5-q2x-pub")
	out := &packet.Publish{Topic: "q2x5/t", Payload: []byte("short"), QoS: 2}
	out.Properties.SetUint(packet.PropMessageExpiry, 1)
	p.v5Publish(out)
	m := s.expectPublish("q2x5/t", "short")

	in := &packet.Publish{Topic: "q2x5/in", Payload: []byte("late"), QoS: 2, PacketID: 11}
	in.Properties.SetUint(packet.PropMessageExpiry, 1)
	p.send(in)
	expectPacket[*packet.Pubrec](p)

	s.nc.Close()
	time.Sleep(2100 * time.Millisecond) // both messages' expiry passes

	p.send(&packet.Pubrel{PacketID: 11})
	if c := expectPacket[*packet.Pubcomp](p); c.PacketID != 11 || c.ReasonCode != packet.Success {
		t.Fatalf("PUBCOMP id %d %v, want 11 success [MQTT-4.3.3-13]", c.PacketID, c.ReasonCode)
	}
	b.waitOffline(t, id)
	s, _ = v5ConnectOK(t, b.Addr, v5Persistent(id, false, 300))
	again := s.expectPublish("q2x5/t", "short")
	if again.PacketID != m.PacketID || !again.Dup {
		t.Fatalf("re-sent %s, want DUP 1 id %d [MQTT-4.3.3-7]", describe(again), m.PacketID)
	}
	s.ack(again)
}

// QoS 0 goes out as QoS 0 with DUP 0 and no identifier, even on a QoS 2
// subscription [MQTT-4.3.1-1]; the topic matches the filter
// [MQTT-3.3.2-3].
func TestSpec5QoS0Sender_MQTT_4_3_1_1(t *testing.T) {
	b := runBroker(t, testOptions())
	s := v5Client(t, b, "spec5-q0-sub")
	s.v5Sub(0, packet.Subscription{Filter: "q05/+/x", QoS: 2})
	p := v5Client(t, b, "spec5-q0-pub")
	p.v5Pub("q05/a/x", "zero", 0, false)
	p.v5Pub("q05/a/y", "other", 0, false)
	m := s.expectPublish("q05/a/x", "zero")
	if m.QoS != 0 || m.Dup || m.PacketID != 0 {
		t.Fatalf("got %s, want QoS 0, DUP 0, no identifier [MQTT-4.3.1-1]", describe(m))
	}
	s.sync() // q05/a/y does not match [MQTT-3.3.2-3]
}

// SUBSCRIBE with several filters: one SUBACK with one code per filter, in
// order [MQTT-3.8.4-5] [MQTT-3.8.4-6]; UNSUBSCRIBE compares filters
// literally [MQTT-3.10.4-1], answers once for several filters
// [MQTT-3.10.4-6], and nothing more is queued for the removed ones
// [MQTT-3.10.4-2].
func TestSpec5SubscribeUnsubscribe_MQTT_3_8_4_5(t *testing.T) {
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "spec5-subs")
	codes := c.v5Subscribe(0,
		packet.Subscription{Filter: "su5/+", QoS: 1},
		packet.Subscription{Filter: "su5/x", QoS: 0},
		packet.Subscription{Filter: "su5/y/#", QoS: 2},
	)
	if fmt.Sprint(codes) != fmt.Sprint([]packet.ReasonCode{1, 0, 2}) {
		t.Fatalf("SUBACK %v, want [1 0 2] [MQTT-3.8.4-6]", codes)
	}
	c.send(&packet.Unsubscribe{PacketID: 50, Filters: []string{"su5/a", "su5/+", "su5/y/#"}})
	u := expectPacket[*packet.Unsuback](c)
	want := []packet.ReasonCode{packet.NoSubscriptionExisted, packet.Success, packet.Success}
	if u.PacketID != 50 || fmt.Sprint(u.ReasonCodes) != fmt.Sprint(want) {
		t.Fatalf("UNSUBACK id %d %v, want 50 %v [MQTT-3.10.4-1] [MQTT-3.10.4-6]", u.PacketID, u.ReasonCodes, want)
	}
	p := v5Client(t, b, "spec5-subs-pub")
	p.v5Pub("su5/a", "gone", 1, false)
	p.v5Pub("su5/y/z", "gone", 1, false)
	p.v5Pub("su5/x", "kept", 1, false)
	m := c.expectPublish("su5/x", "kept") // "su5/x" survived "su5/+" [MQTT-3.10.4-1]
	if m.QoS != 0 {
		t.Fatalf("delivered at QoS %d, want 0", m.QoS)
	}
	c.sync() // [MQTT-3.10.4-2]
}

// A QoS 1 delivery under way when its subscription is removed is still
// completed: re-sent after a reconnection until acknowledged
// [MQTT-3.10.4-3].
func TestSpec5UnsubscribeCompletesInflight_MQTT_3_10_4_3(t *testing.T) {
	b := runBroker(t, testOptions())
	const id = "spec5-unsub-inflight"
	s, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	s.v5Sub(0, packet.Subscription{Filter: "ui5/t", QoS: 1})
	p := v5Client(t, b, "spec5-unsub-inflight-pub")
	p.v5Pub("ui5/t", "under way", 1, false)
	m := s.expectPublish("ui5/t", "under way")
	s.send(&packet.Unsubscribe{PacketID: 3, Filters: []string{"ui5/t"}})
	expectPacket[*packet.Unsuback](s)
	s = spec5Reconnect(t, b, s, id)
	again := s.expectPublish("ui5/t", "under way")
	if again.PacketID != m.PacketID || !again.Dup {
		t.Fatalf("re-sent %s, want DUP 1 id %d [MQTT-3.10.4-3]", describe(again), m.PacketID)
	}
	s.ack(again)
	s.sync()
}

// Retained messages: RETAIN 1 replaces what the topic retained
// [MQTT-3.3.1-5]; an empty retained payload is forwarded and deletes it
// [MQTT-3.3.1-6] and is not itself retained [MQTT-3.3.1-7]; RETAIN 0
// neither stores nor removes [MQTT-3.3.1-8].
func TestSpec5Retained_MQTT_3_3_1_5(t *testing.T) {
	b := runBroker(t, testOptions())
	p := v5Client(t, b, "spec5-ret-pub")
	retained := func(filter string) []*packet.Publish {
		t.Helper()
		s := v5Client(t, b, v5ID("spec5-ret-sub"))
		s.v5Sub(0, packet.Subscription{Filter: filter, QoS: 1})
		s.send(&packet.Pingreq{})
		var got []*packet.Publish
		for {
			switch m := s.expect().(type) {
			case *packet.Publish:
				got = append(got, m)
				s.ack(m)
			case *packet.Pingresp:
				s.send(&packet.Disconnect{})
				return got
			}
		}
	}
	p.v5Pub("ret5/a", "one", 1, true)
	p.v5Pub("ret5/a", "two", 1, true)
	if got := retained("ret5/a"); len(got) != 1 || string(got[0].Payload) != "two" || !got[0].Retain {
		t.Fatalf("retained %d messages, want only \"two\" [MQTT-3.3.1-5]", len(got))
	}
	p.v5Pub("ret5/a", "not retained", 1, false)
	if got := retained("ret5/a"); len(got) != 1 || string(got[0].Payload) != "two" {
		t.Fatalf("RETAIN 0 changed the retained message [MQTT-3.3.1-8]")
	}
	live := v5Client(t, b, "spec5-ret-live")
	live.v5Sub(0, packet.Subscription{Filter: "ret5/a", QoS: 1, RetainHandling: 2})
	p.v5Pub("ret5/a", "", 1, true)
	m := live.expectPublish("ret5/a", "") // forwarded as usual [MQTT-3.3.1-6]
	live.ack(m)
	if got := retained("ret5/#"); len(got) != 0 {
		t.Fatalf("after an empty retained message %d retained remain [MQTT-3.3.1-6] [MQTT-3.3.1-7]", len(got))
	}
}

// A client with a shared and a non-shared subscription matching one topic
// gets two copies, each carrying the Subscription Identifier of the
// subscription it was sent for, and only that one [MQTT-3.3.4-5].
func TestSpec5SubscriptionIDPerCopy_MQTT_3_3_4_5(t *testing.T) {
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "spec5-subid")
	c.v5Sub(7, packet.Subscription{Filter: "sid5/t", QoS: 0})
	c.v5Sub(9, packet.Subscription{Filter: "$share/g/sid5/#", QoS: 0})
	p := v5Client(t, b, "spec5-subid-pub")
	p.v5Pub("sid5/t", "m", 0, false)
	seen := map[uint32]bool{}
	for range 2 {
		m := c.expectPublish("sid5/t", "m")
		if len(m.Properties.SubscriptionIDs) != 1 {
			t.Fatalf("copy carries identifiers %v, want exactly one [MQTT-3.3.4-5]", m.Properties.SubscriptionIDs)
		}
		seen[m.Properties.SubscriptionIDs[0]] = true
	}
	if !seen[7] || !seen[9] {
		t.Fatalf("identifiers %v, want 7 and 9 [MQTT-3.3.4-5]", seen)
	}
	c.sync()
}

// Every PINGREQ is answered with a PINGRESP [MQTT-3.12.4-1].
func TestSpec5Pingresp_MQTT_3_12_4_1(t *testing.T) {
	b := runBroker(t, testOptions())
	c := v5Client(t, b, "spec5-ping")
	c.send(&packet.Pingreq{}, &packet.Pingreq{}, &packet.Pingreq{})
	for range 3 {
		expectPacket[*packet.Pingresp](c)
	}
}

// Session state stays while the connection is open, even past its Session
// Expiry Interval [MQTT-4.1.0-1].
func TestSpec5SessionKeptWhileConnected_MQTT_4_1_0_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c, _ := v5ConnectOK(t, b.Addr, v5Persistent("spec5-keep", true, 1))
	c.v5Sub(0, packet.Subscription{Filter: "keep5/t", QoS: 1})
	time.Sleep(1500 * time.Millisecond)
	p := v5Client(t, b, "spec5-keep-pub")
	p.v5Pub("keep5/t", "still here", 1, false)
	c.ack(c.expectPublish("keep5/t", "still here"))
}

// Topics are Ordered Topics by default: one publisher's messages on a topic
// reach a subscriber in the order sent, at each QoS [MQTT-4.6.0-5]
// [MQTT-4.6.0-6], over an ordered, lossless transport (TCP)
// [MQTT-4.2.0-1].
func TestSpec5OrderedTopics_MQTT_4_6_0_6(t *testing.T) {
	b := runBroker(t, testOptions())
	s := v5Client(t, b, "spec5-order-sub")
	s.v5Sub(0, packet.Subscription{Filter: "order5/t", QoS: 2})
	p := v5Client(t, b, "spec5-order-pub")
	const n = 30
	var batch []packet.Packet
	for i := range n {
		pk := &packet.Publish{Topic: "order5/t", Payload: []byte(fmt.Sprint(i)), QoS: byte(i % 3)}
		if pk.QoS > 0 {
			pk.PacketID = p.id()
		}
		batch = append(batch, pk)
	}
	p.send(batch...)
	for range n {
		if a, ok := p.expect().(*packet.Pubrec); ok {
			p.send(&packet.Pubrel{PacketID: a.PacketID})
		}
	}
	next := map[byte]int{0: 0, 1: 1, 2: 2}
	for _, m := range specReceive(s, n) {
		if string(m.Payload) != fmt.Sprint(next[m.QoS]) {
			t.Fatalf("QoS %d message %q arrived, want %d next [MQTT-4.6.0-5]", m.QoS, m.Payload, next[m.QoS])
		}
		next[m.QoS] += 3
	}
}

// Topic Names and Filters on input: wildcard placement [MQTT-4.7.1-1]
// [MQTT-4.7.1-2], at least one character [MQTT-4.7.3-1], no U+0000
// [MQTT-4.7.3-2], well-formed UTF-8 [MQTT-3.3.2-1] [MQTT-3.8.3-1]
// [MQTT-3.10.3-1]; up to 65,535 bytes accepted [MQTT-4.7.3-3].
func TestSpec5TopicsOnInput(t *testing.T) {
	o := testOptions()
	o.MaxTopicLength = 65535 // the longest a topic can be, whatever the default
	b := runBroker(t, o)
	c := v5Client(t, b, "spec5-filters")
	for _, f := range []string{"a/#/b", "a#", "#/", "a/b+", "+a/b", "a/++", ""} {
		c.send(&packet.Subscribe{PacketID: c.id(), Subscriptions: []packet.Subscription{{Filter: f}}})
		switch p := c.expect().(type) {
		case *packet.Suback:
			if len(p.ReasonCodes) != 1 || p.ReasonCodes[0] != packet.TopicFilterInvalid {
				t.Fatalf("filter %q: SUBACK %v, want 0x8F [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.3-1]", f, p.ReasonCodes)
			}
		case *packet.Disconnect:
			if !p.ReasonCode.IsError() {
				t.Fatalf("filter %q: DISCONNECT %v", f, p.ReasonCode)
			}
			c.expectClosed(waitFor)
			c = v5Client(t, b, v5ID("spec5-filters"))
		default:
			t.Fatalf("filter %q: got %s", f, p.Type())
		}
	}
	for _, f := range []string{"+", "#", "+/+", "/+", "a/+/b", "a/#", "+/#", "/"} {
		c.v5Sub(0, packet.Subscription{Filter: f})
	}

	closes := []struct {
		name string
		raw  []byte
	}{
		{"PUBLISH topic with U+0000 [MQTT-4.7.3-2]", spec5Packet(0x30, []byte{0, 3, 'a', 0, 'b'}, []byte{0}, []byte("x"))},
		{"PUBLISH topic ill-formed UTF-8 [MQTT-3.3.2-1]", spec5Packet(0x30, spec5Bad, []byte{0}, []byte("x"))},
		{"PUBLISH empty topic without alias [MQTT-4.7.3-1]", spec5Packet(0x30, []byte{0, 0}, []byte{0}, []byte("x"))},
		{"SUBSCRIBE filter with U+0000 [MQTT-4.7.3-2]", spec5Packet(0x82, []byte{0, 1, 0}, []byte{0, 3, 'a', 0, 'b', 0})},
		{"SUBSCRIBE filter ill-formed UTF-8 [MQTT-3.8.3-1]", spec5Packet(0x82, []byte{0, 1, 0}, spec5Bad, []byte{0})},
		{"UNSUBSCRIBE filter ill-formed UTF-8 [MQTT-3.10.3-1]", spec5Packet(0xa2, []byte{0, 1, 0}, spec5Bad)},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			c := v5Client(t, b, v5ID("spec5-bad"))
			if err := c.write(tc.raw); err != nil {
				t.Fatal(err)
			}
			got := c.expectClosed(waitFor)
			if len(got) > 1 || (len(got) == 1 && (got[0].Type() != packet.DISCONNECT || !got[0].(*packet.Disconnect).ReasonCode.IsError())) {
				t.Fatalf("got %d packets before the close, want at most a DISCONNECT with an error code", len(got))
			}
		})
	}

	long := strings.Repeat("L", 65535)
	s := v5Client(t, b, "spec5-long-sub")
	s.v5Sub(0, packet.Subscription{Filter: "#"})
	p := v5Client(t, b, "spec5-long-pub")
	p.v5Pub(long, "long", 0, false)
	if m := expectPacket[*packet.Publish](s); m.Topic != long {
		t.Fatalf("65,535-byte topic came back as %d bytes [MQTT-4.7.3-3]", len(m.Topic))
	}
}

// Matching: filters starting with a wildcard do not match topics starting
// with '$' [MQTT-4.7.2-1]; names are compared as sent, never normalised
// [MQTT-4.7.3-4].
func TestSpec5TopicMatching_MQTT_4_7_2_1(t *testing.T) {
	b := runBroker(t, testOptions())
	wild := v5Client(t, b, "spec5-dollar-wild")
	wild.v5Sub(0, packet.Subscription{Filter: "#"})
	wild.v5Sub(0, packet.Subscription{Filter: "+/x"})
	dollar := v5Client(t, b, "spec5-dollar")
	dollar.v5Sub(0, packet.Subscription{Filter: "$app/#"})
	nfc := v5Client(t, b, "spec5-nfc")
	nfc.v5Sub(0, packet.Subscription{Filter: "caf\u00e9/+"})
	p := v5Client(t, b, "spec5-dollar-pub")
	p.v5Pub("$app/x", "d", 0, false)
	dollar.expectPublish("$app/x", "d")
	p.v5Pub("cafe\u0301/1", "nfd", 0, false)
	p.v5Pub("caf\u00e9/1", "nfc", 0, false)
	nfc.expectPublish("caf\u00e9/1", "nfc")
	nfc.sync()
	wild.expectPublish("cafe\u0301/1", "nfd")
	wild.expectPublish("caf\u00e9/1", "nfc")
	wild.sync() // not "$app/x" [MQTT-4.7.2-1]
}

// A QoS 2 delivery to a shared subscriber cut off by a broken connection is
// finished with that client when it comes back, not given to another member
// [MQTT-4.8.2-4].
func TestSpec5SharedQoS2Resumes_MQTT_4_8_2_4(t *testing.T) {
	b := runBroker(t, testOptions())
	const id = "spec5-share-a"
	a, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 300))
	a.v5Sub(0, packet.Subscription{Filter: "$share/g5/sh5/t", QoS: 2})
	p := v5Client(t, b, "spec5-share-pub")
	p.v5Pub("sh5/t", "q2", 2, false)
	m := a.expectPublish("sh5/t", "q2")
	a.nc.Close()
	b.waitOffline(t, id)
	other := v5Client(t, b, "spec5-share-b")
	other.v5Sub(0, packet.Subscription{Filter: "$share/g5/sh5/t", QoS: 2})
	a, _ = v5ConnectOK(t, b.Addr, v5Persistent(id, false, 300))
	again := a.expectPublish("sh5/t", "q2")
	if again.PacketID != m.PacketID || again.QoS != 2 {
		t.Fatalf("resumed delivery %s, want QoS 2 id %d [MQTT-4.8.2-4]", describe(again), m.PacketID)
	}
	a.ack(again)
	other.sync()
}

// A shared subscriber's PUBACK with a failure code ends the delivery: the
// message is not offered to another member [MQTT-4.8.2-6].
func TestSpec5SharedNegativeAck_MQTT_4_8_2_6(t *testing.T) {
	b := runBroker(t, testOptions())
	members := []*rawClient{v5Client(t, b, "spec5-nack-1"), v5Client(t, b, "spec5-nack-2")}
	for _, m := range members {
		m.v5Sub(0, packet.Subscription{Filter: "$share/g6/nack5/t", QoS: 1})
	}
	p := v5Client(t, b, "spec5-nack-pub")
	p.v5Pub("nack5/t", "refuse me", 1, false)
	var got, rest *rawClient
	for got == nil {
		for i, m := range members {
			pk, err := m.read(20 * time.Millisecond)
			if err != nil {
				continue
			}
			pub, ok := pk.(*packet.Publish)
			if !ok {
				t.Fatalf("got %s, want PUBLISH", pk.Type())
			}
			m.send(&packet.Puback{PacketID: pub.PacketID, ReasonCode: packet.UnspecifiedError})
			got, rest = m, members[1-i]
			break
		}
	}
	got.sync()
	rest.sync() // not offered to the other member
	time.Sleep(quiet)
	rest.sync()
}

// With the client's Receive Maximum reached, the server sends no more QoS>0
// PUBLISH (the initial quota is that maximum) [MQTT-4.9.0-1], yet still
// handles and answers everything else [MQTT-4.9.0-3].
func TestSpec5SendQuota_MQTT_4_9_0_1(t *testing.T) {
	b := runBroker(t, testOptions())
	cp := v5Connect("spec5-quota")
	cp.Properties.SetUint(packet.PropReceiveMaximum, 2)
	s, _ := v5ConnectOK(t, b.Addr, cp)
	s.v5Sub(0, packet.Subscription{Filter: "quota5/t", QoS: 1})
	p := v5Client(t, b, "spec5-quota-pub")
	for i := range 4 {
		p.v5Pub("quota5/t", fmt.Sprint(i), 1, false)
	}
	m0 := s.expectPublish("quota5/t", "0")
	m1 := s.expectPublish("quota5/t", "1")
	s.sync() // no third PUBLISH, and PINGREQ answered [MQTT-4.9.0-3]
	s.v5Sub(0, packet.Subscription{Filter: "quota5/other", QoS: 0})
	s.ack(m0)
	s.ack(s.expectPublish("quota5/t", "2"))
	s.ack(m1)
	s.ack(s.expectPublish("quota5/t", "3"))
}

// Topic Aliases from the client are policed: above the server's Topic
// Alias Maximum [MQTT-3.2.2-17] [MQTT-3.3.2-9], or any alias when the
// server allows none [MQTT-3.2.2-18], gets DISCONNECT 0x94.
func TestSpec5ClientTopicAliasLimits_MQTT_3_2_2_17(t *testing.T) {
	for _, max := range []uint16{0, 3} {
		t.Run(fmt.Sprintf("maximum %d", max), func(t *testing.T) {
			o := testOptions()
			o.TopicAliasMaximum = max
			b := runBroker(t, o)
			c, ack := v5ConnectOK(t, b.Addr, v5Connect("spec5-alias"))
			if got := ack.Properties.TopicAliasMaximum; got != max {
				t.Fatalf("CONNACK Topic Alias Maximum %d, want %d", got, max)
			}
			if max > 0 {
				ok := &packet.Publish{Topic: "alias5/t", Payload: []byte("x")}
				ok.Properties.SetUint(packet.PropTopicAlias, uint32(max))
				c.send(ok)
				c.sync()
			}
			bad := &packet.Publish{Topic: "alias5/t", Payload: []byte("x")}
			bad.Properties.SetUint(packet.PropTopicAlias, uint32(max)+1)
			c.send(bad)
			c.v5ExpectDisconnect(packet.TopicAliasInvalid)
		})
	}
}

// With Request Problem Information 0, no packet but PUBLISH, CONNACK and
// DISCONNECT carries a Reason String or User Property [MQTT-3.1.2-29]:
// checked on SUBACK, UNSUBACK, PUBACK, PUBREC and PUBCOMP, failures too.
func TestSpec5NoProblemInformation_MQTT_3_1_2_29(t *testing.T) {
	b := runBroker(t, testOptions())
	cp := v5Connect("spec5-noproblem")
	cp.Properties.SetUint(packet.PropRequestProblemInfo, 0)
	c, _ := v5ConnectOK(t, b.Addr, cp)
	check := func(what string, p *packet.Properties) {
		t.Helper()
		if p.Has(packet.PropReasonString) || len(p.User) > 0 {
			t.Errorf("%s carries a Reason String or User Property [MQTT-3.1.2-29]", what)
		}
	}
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "np5/t", QoS: 1}}})
	sa := expectPacket[*packet.Suback](c)
	check("SUBACK", &sa.Properties)
	c.send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"np5/none"}})
	ua := expectPacket[*packet.Unsuback](c)
	check("UNSUBACK", &ua.Properties)
	c.send(&packet.Publish{Topic: "np5/nobody", QoS: 1, PacketID: 3})
	pa := expectPacket[*packet.Puback](c)
	check("PUBACK", &pa.Properties)
	c.send(&packet.Publish{Topic: "np5/nobody", QoS: 2, PacketID: 4})
	pr := expectPacket[*packet.Pubrec](c)
	check("PUBREC", &pr.Properties)
	c.send(&packet.Pubrel{PacketID: 4})
	pc := expectPacket[*packet.Pubcomp](c)
	check("PUBCOMP", &pc.Properties)
	c.send(&packet.Pubrel{PacketID: 99})
	pc = expectPacket[*packet.Pubcomp](c)
	check("PUBCOMP 0x92", &pc.Properties)
}

// spec5DenyUser refuses the user name "bad" and admits everyone else.
type spec5DenyUser struct{}

func (spec5DenyUser) Authenticate(_ context.Context, c *auth.Client) (auth.Result, error) {
	if c.Username == "bad" {
		return auth.Deny, nil
	}
	return auth.Allow, nil
}

// Clean Start is processed only once the CONNECT is valid [MQTT-3.1.4-4]:
// a refused CONNECT with Clean Start 1 leaves the session alone; an
// accepted one with Clean Start 0 resumes it, with Clean Start 1 discards
// it.
func TestSpec5CleanStartOnceValid_MQTT_3_1_4_4(t *testing.T) {
	o := testOptions()
	o.Authenticator = spec5DenyUser{}
	b := runBroker(t, o)
	const id = "spec5-cleanstart"
	conn := func(user string, clean bool) *packet.Connect {
		p := v5Persistent(id, clean, 300)
		p.UsernameFlag, p.Username = true, user
		return p
	}
	c, _ := v5ConnectOK(t, b.Addr, conn("good", true))
	c.v5Sub(0, packet.Subscription{Filter: "cs5/t", QoS: 1})
	c.send(&packet.Disconnect{})
	b.waitOffline(t, id)

	v5ExpectConnackRefused(t, b.Addr, conn("bad", true), packet.BadUserNameOrPassword)

	c, ack := v5ConnectOK(t, b.Addr, conn("good", false))
	if !ack.SessionPresent {
		t.Fatalf("a refused Clean Start 1 CONNECT discarded the session [MQTT-3.1.4-4]")
	}
	p, _ := v5ConnectOK(t, b.Addr, func() *packet.Connect {
		q := v5Connect("spec5-cs-pub")
		q.UsernameFlag, q.Username = true, "good"
		return q
	}())
	p.v5Pub("cs5/t", "resumed", 1, false)
	c.ack(c.expectPublish("cs5/t", "resumed"))
	c.send(&packet.Disconnect{})
	b.waitOffline(t, id)

	c, ack = v5ConnectOK(t, b.Addr, conn("good", true))
	if ack.SessionPresent {
		t.Fatalf("Clean Start 1: Session Present 1 [MQTT-3.1.4-4]")
	}
	p.v5Pub("cs5/t", "gone", 1, false)
	c.sync() // the subscription went with the old session
}

// Over WebSocket a 5.0 client gets the "mqtt" sub-protocol
// [MQTT-6.0.0-4]; packets may be split across and merged within binary
// frames [MQTT-6.0.0-2]; a text frame closes the connection
// [MQTT-6.0.0-1].
func TestSpec5WebSocket_MQTT_6_0_0_1(t *testing.T) {
	cfg := listener.DefaultConfig(listener.TypeWS, "127.0.0.1:0")
	_, l := serveOn(t, testOptions(), cfg, broker.ListenerOptions{Name: "ws5"})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+l.Addr().String()+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != "mqtt" {
		t.Fatalf("sub-protocol %q, want mqtt [MQTT-6.0.0-4]", ws.Subprotocol())
	}
	var enc []byte
	for _, p := range []packet.Packet{
		v5Connect("spec5-ws"),
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "ws5/t", QoS: 1}}},
		&packet.Publish{Topic: "ws5/t", Payload: []byte("framed"), QoS: 1, PacketID: 2},
	} {
		if enc, err = p.Append(enc, packet.V5); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range [][]byte{enc[:3], enc[3:20], enc[20:]} {
		if err := ws.Write(ctx, websocket.MessageBinary, f); err != nil {
			t.Fatal(err)
		}
	}
	var in []byte
	var dec packet.Decoder
	dec.Version = packet.V5
	var got []packet.Type
	for len(got) < 4 { // CONNACK, SUBACK, then PUBACK and PUBLISH in either order
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		in = append(in, b...)
		for {
			p, n, err := dec.Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			if p == nil {
				break
			}
			in = in[n:]
			got = append(got, p.Type())
		}
	}
	if got[0] != packet.CONNACK || got[1] != packet.SUBACK {
		t.Fatalf("received %v [MQTT-6.0.0-2]", got)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte{0xc0, 0}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if websocket.CloseStatus(err) == -1 && ctx.Err() != nil {
				t.Fatalf("connection still open after a text frame [MQTT-6.0.0-1]")
			}
			break
		}
	}
}
