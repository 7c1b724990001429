package gannettest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// Connect311 returns a 3.1.1 CONNECT for id with Clean Session 1.
func Connect311(id string) *packet.Connect {
	return &packet.Connect{Version: packet.V311, ClientID: id, CleanStart: true, KeepAlive: 60}
}

// Connect5 returns a 5.0 CONNECT for id with Clean Start 1 and no Session
// Expiry Interval (0: the session ends with the connection).
func Connect5(id string) *packet.Connect {
	return &packet.Connect{Version: packet.V5, ClientID: id, CleanStart: true, KeepAlive: 60}
}

// Persistent5 returns a 5.0 CONNECT for id with the given Clean Start and
// Session Expiry Interval.
func Persistent5(id string, clean bool, expiry uint32) *packet.Connect {
	p := Connect5(id)
	p.CleanStart = clean
	p.Properties.SetUint(packet.PropSessionExpiry, expiry)
	return p
}

// versionOf is the level a connection speaks after sending p: 3.1 and 5.0
// as p says, 3.1.1 for everything else (a CONNECT with a level the broker
// refuses is answered at 3.1.1).
func versionOf(p *packet.Connect) byte {
	switch p.Version {
	case packet.V31, packet.V5:
		return p.Version
	}
	return packet.V311
}

// Connect sends p on c and returns the CONNACK, whatever its code.
func (c *Conn) Connect(p *packet.Connect) *packet.Connack {
	c.T.Helper()
	c.Send(p)
	return ExpectPacket[*packet.Connack](c)
}

// ConnectOK is Connect that fails unless the CONNACK accepts p.
func (c *Conn) ConnectOK(p *packet.Connect) *packet.Connack {
	c.T.Helper()
	ack := c.Connect(p)
	if ack.ReasonCode != packet.Success {
		c.T.Fatalf("CONNACK for %q: %s (%#x)", p.ClientID, ack.ReasonCode, byte(ack.ReasonCode))
	}
	return ack
}

// ConnectRefused sends p and expects a CONNACK with failure code rc,
// Session Present 0 [MQTT-3.2.2-6], and then the close [MQTT-3.2.2-7].
func (c *Conn) ConnectRefused(p *packet.Connect, rc packet.ReasonCode) {
	c.T.Helper()
	ack := c.Connect(p)
	if ack.ReasonCode != rc {
		c.T.Fatalf("CONNACK %s (%#x), want %s (%#x)", ack.ReasonCode, byte(ack.ReasonCode), rc, byte(rc))
	}
	if ack.SessionPresent {
		c.T.Errorf("refusing CONNACK has Session Present 1 [MQTT-3.2.2-6]")
	}
	c.ExpectClosedSilently(c.timeout())
}

// ConnectRaw dials addr, sends p and returns the connection (at p's
// protocol level) and the CONNACK, whatever its code.
func ConnectRaw(t testing.TB, addr string, p *packet.Connect) (*Conn, *packet.Connack) {
	t.Helper()
	c := Dial(t, addr, versionOf(p))
	return c, c.Connect(p)
}

// ConnectOK is ConnectRaw that fails unless the CONNACK accepts p.
func ConnectOK(t testing.TB, addr string, p *packet.Connect) (*Conn, *packet.Connack) {
	t.Helper()
	c := Dial(t, addr, versionOf(p))
	return c, c.ConnectOK(p)
}

// ExpectConnackRefused connects with p and expects the refusal rc (see
// ConnectRefused).
func ExpectConnackRefused(t testing.TB, addr string, p *packet.Connect, rc packet.ReasonCode) {
	t.Helper()
	Dial(t, addr, versionOf(p)).ConnectRefused(p, rc)
}

// ExpectServing checks that the broker at addr still accepts a client and
// answers it: the follow-up to every hostile input.
func ExpectServing(t testing.TB, addr string) {
	t.Helper()
	c, _ := ConnectOK(t, addr, Connect311(ID("check")))
	c.Sub(0, packet.Subscription{Filter: "serving/check", QoS: 1})
	c.Pub("serving/check", "ok", 0, false)
	c.ExpectPublish("serving/check", "ok")
	c.Send(&packet.Disconnect{})
}

// UserProps builds User Properties from key, value pairs.
func UserProps(kv ...string) []packet.UserProperty {
	var u []packet.UserProperty
	for i := 0; i+1 < len(kv); i += 2 {
		u = append(u, packet.UserProperty{Key: kv[i], Value: kv[i+1]})
	}
	return u
}

var seq atomic.Int64

// ID returns a client identifier unique within the test process.
func ID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }
