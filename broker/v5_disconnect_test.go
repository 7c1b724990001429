package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.1.4-3]: when a second connection takes over a ClientID, the old
// 5.0 connection gets DISCONNECT 0x8E (Session taken over) and is closed;
// the new one works.
func TestV5DisconnectSessionTakenOver_MQTT_3_1_4_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	old, _ := v5ConnectOK(t, b.Addr, v5Persistent("twin", true, 60))
	fresh, ack := v5ConnectOK(t, b.Addr, v5Persistent("twin", false, 60))
	if !ack.SessionPresent {
		t.Errorf("takeover of a 60 s session: Session Present 0")
	}
	old.v5ExpectDisconnect(packet.SessionTakenOver)
	fresh.v5Sub(0, packet.Subscription{Filter: "twin", QoS: 1})
	fresh.v5Pub("twin", "alive", 0, false)
	fresh.expectPublish("twin", "alive")

	// paho hears the reason code too.
	pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho-twin"), nil)
	v5Client(t, b, "paho-twin")
	select {
	case d := <-pc.Disconnects:
		if d.ReasonCode != byte(packet.SessionTakenOver) {
			t.Errorf("paho: DISCONNECT %#x, want 0x8E", d.ReasonCode)
		}
		if d.Properties != nil && d.Properties.SessionExpiryInterval != nil {
			t.Errorf("paho: server DISCONNECT with Session Expiry Interval [MQTT-3.14.2-2]")
		}
	case <-time.After(waitFor):
		t.Fatalf("paho: no DISCONNECT on takeover")
	}
}

// 5.0 3.14.2.1 and [MQTT-3.14.2-2]: the DISCONNECTs the broker sends carry
// the reason: 0x8D when the keep-alive runs out [MQTT-3.1.2-22], 0x8B when
// the server shuts down; a 3.1.1 connection is just closed. None carries a
// Session Expiry Interval, whatever the client's session.
func TestV5ServerDisconnectReasonCodes_MQTT_3_14_2_2(t *testing.T) {
	t.Parallel()
	t.Run("keep alive timeout 0x8D", func(t *testing.T) {
		t.Parallel()
		b := runBroker(t, testOptions())
		p := v5Persistent("sleepy", true, 60)
		p.KeepAlive = 1
		c, _ := v5ConnectOK(t, b.Addr, p)
		start := time.Now()
		c.v5ExpectDisconnect(packet.KeepAliveTimeout)
		if d := time.Since(start); d < time.Second || d > waitFor {
			t.Errorf("keep alive 1 s: DISCONNECT after %v, want about 1.5 s [MQTT-3.1.2-22]", d)
		}
	})
	t.Run("server shutting down 0x8B", func(t *testing.T) {
		t.Parallel()
		b := runBroker(t, testOptions())
		c, _ := v5ConnectOK(t, b.Addr, v5Persistent("v5", true, 0xFFFFFFFF))
		c.v5Sub(0, packet.Subscription{Filter: "x", QoS: 1})
		old := client(t, b, "v311")
		pc, _ := v5Paho(t, b.Addr, v5PahoConnect("paho"), nil)
		closed := make(chan struct{})
		go func() { b.Close(); close(closed) }()
		c.v5ExpectDisconnect(packet.ServerShuttingDown)
		old.expectClosedSilently(waitFor)
		select {
		case d := <-pc.Disconnects:
			if d.ReasonCode != byte(packet.ServerShuttingDown) {
				t.Errorf("paho: DISCONNECT %#x, want 0x8B", d.ReasonCode)
			}
		case <-time.After(waitFor):
			t.Errorf("paho: no DISCONNECT on shutdown")
		}
		select {
		case <-closed:
		case <-time.After(waitFor):
			t.Fatalf("Close did not return")
		}
	})
	t.Run("protocol errors", func(t *testing.T) {
		t.Parallel()
		b := runBroker(t, testOptions())
		for _, tc := range []struct {
			send packet.Packet
			rc   packet.ReasonCode
		}{
			{&packet.Connect{Version: packet.V5, ClientID: "again"}, packet.ProtocolError}, // [MQTT-3.1.0-2]
			{&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#/b"}}}, packet.TopicFilterInvalid},
			{&packet.Publish{Topic: "a/+", Payload: []byte("x")}, packet.TopicNameInvalid},
		} {
			c, _ := v5ConnectOK(t, b.Addr, v5Persistent(v5ID("err"), true, 60))
			c.send(tc.send)
			c.v5ExpectDisconnect(tc.rc)
		}
	})
}

// [MQTT-4.12.0-1] [MQTT-3.1.4-2]: an Authentication Method the broker does
// not support gets CONNACK 0x8C (Bad authentication method) and the
// connection is closed; no session is made. (The broker supports no
// method yet; should it add SCRAM-SHA-256, keep this name unknown.)
func TestV5AuthenticationMethodUnsupported_MQTT_4_12_0_1(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p := v5Persistent("auth", true, 60)
	p.Properties.SetString(packet.PropAuthMethod, "X-GANNET-TEST-UNKNOWN")
	p.Properties.SetBinary(packet.PropAuthData, []byte("hello"))
	v5ExpectConnackRefused(t, b.Addr, p, packet.BadAuthenticationMethod)
	if exists, _ := b.SessionState("auth"); exists {
		t.Errorf("a refused CONNECT left a session")
	}

	// paho: Connect fails with the CONNACK's code.
	nc := dialRaw(t, b.Addr).nc
	cli := paho.NewClient(paho.ClientConfig{Conn: nc, PacketTimeout: waitFor})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cp := v5PahoConnect("paho-auth")
	cp.Properties = &paho.ConnectProperties{AuthMethod: "X-GANNET-TEST-UNKNOWN", AuthData: []byte("x")}
	ack, err := cli.Connect(ctx, cp)
	if err == nil || ack == nil || ack.ReasonCode != byte(packet.BadAuthenticationMethod) {
		t.Errorf("paho: connect error %v, CONNACK %+v; want refusal 0x8C", err, ack)
	}
}
