package broker_test

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.1.0-1]: a PUBLISH before CONNECT closes the socket, unanswered.
func TestConnectMustComeFirst(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	c.write(c.encode(&packet.Publish{Topic: "a", Payload: []byte("x")}))
	c.expectClosedSilently(time.Second) // well within the 10 s connect timeout
	expectServing(t, b)
}

// A socket that sends nothing, or half a CONNECT, is closed once the
// connect timeout has passed, and not long before.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ConnectTimeout = 300 * time.Millisecond
	b := runBroker(t, opts)
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"half a CONNECT", hx("10 10 00 04 4d 51")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c := dialRaw(t, b.Addr)
			if tc.send != nil {
				c.write(tc.send)
			}
			c.expectClosedSilently(2 * time.Second)
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Errorf("closed after %v, before the 300ms connect timeout", d)
			}
		})
	}
}

// [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 0x01, then the
// connection is closed.
func TestConnectUnsupportedProtocolLevel(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	for _, tc := range []struct {
		name  string
		proto string
		level byte
	}{
		{"MQTT level 6", "MQTT", 6},
		{"MQTT level 3", "MQTT", 3},
		{"MQIsdp level 4", "MQIsdp", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, b.Addr)
			c.send(&packet.Connect{ProtocolName: tc.proto, Version: tc.level, ClientID: "c", CleanStart: true})
			got := c.expectClosed(time.Second)
			if len(got) != 1 {
				t.Fatalf("got %d packets before close, want one CONNACK", len(got))
			}
			ack, ok := got[0].(*packet.Connack)
			if !ok || ack.ReasonCode != packet.UnsupportedProtocolVersion || ack.SessionPresent {
				t.Fatalf("got %s %+v, want CONNACK return code 0x01 with session present 0 [MQTT-3.2.2-4]", got[0].Type(), got[0])
			}
		})
	}
}

// An unknown protocol name [MQTT-3.1.2-1] is not continued as MQTT.
func TestConnectUnknownProtocolName(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	c.send(&packet.Connect{ProtocolName: "HTTP", Version: 4, ClientID: "c", CleanStart: true})
	for _, p := range c.expectClosed(time.Second) {
		if ack, ok := p.(*packet.Connack); !ok || ack.ReasonCode == packet.Success {
			t.Fatalf("got %s %+v, want no acceptance", p.Type(), p)
		}
	}
}

// [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.1.3-8]: an empty client identifier is assigned a
// unique one with clean session 1, and refused with 0x02 with clean
// session 0.
func TestConnectEmptyClientID(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())

	t.Run("clean session 1 is assigned an identifier", func(t *testing.T) {
		// Two such clients at once: distinct identifiers, no takeover.
		c1, ack1 := connectOK(t, b.Addr, connectPacket(""))
		c2, _ := connectOK(t, b.Addr, connectPacket(""))
		if ack1.SessionPresent {
			t.Errorf("session present 1 for a clean session [MQTT-3.2.2-1]")
		}
		c1.sub("empty/id", 0)
		c2.publish("empty/id", "hello", 0, false)
		c1.expectPublish("empty/id", "hello")
		c2.sync()
	})

	t.Run("MQTT 3.1 gets 0x02", func(t *testing.T) {
		// 3.1 requires an identifier of 1 to 23 characters.
		c, ack := connectRaw(t, b.Addr, &packet.Connect{Version: packet.V31, CleanStart: true})
		if ack.ReasonCode != packet.ClientIdentifierNotValid {
			t.Fatalf("CONNACK %s, want 0x02", ack.ReasonCode)
		}
		c.expectClosedSilently(time.Second)
	})

	t.Run("clean session 0 gets 0x02", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		p := connectPacket("")
		p.CleanStart = false
		c.send(p)
		got := c.expectClosed(time.Second)
		if len(got) != 1 {
			t.Fatalf("got %d packets before close, want one CONNACK", len(got))
		}
		if ack, ok := got[0].(*packet.Connack); !ok || ack.ReasonCode != packet.ClientIdentifierNotValid || ack.SessionPresent {
			t.Fatalf("got %s %+v, want CONNACK 0x02 [MQTT-3.1.3-8] [MQTT-3.2.2-4]", got[0].Type(), got[0])
		}
	})
}

// [MQTT-3.1.3-5] [MQTT-3.1.3-9]: identifiers of 1 to 23 characters are
// accepted; MQTT 3.1 clients with longer ones are refused with 0x02.
func TestConnectClientIDLength(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	connectOK(t, b.Addr, &packet.Connect{Version: packet.V31, ClientID: "abcdefghijklmnopqrstuvw", CleanStart: true})
	c, ack := connectRaw(t, b.Addr, &packet.Connect{Version: packet.V31, ClientID: "abcdefghijklmnopqrstuvwx", CleanStart: true})
	if ack.ReasonCode != packet.ClientIdentifierNotValid {
		t.Fatalf("24-character 3.1 identifier: CONNACK %s, want 0x02", ack.ReasonCode)
	}
	c.expectClosedSilently(time.Second)
}

// [MQTT-3.1.0-2]: a second CONNECT is a protocol violation; the
// connection is closed.
func TestConnectSecondConnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "twice")
	c.send(connectPacket("twice"))
	c.expectClosedSilently(time.Second)
	expectServing(t, b)
}

// [MQTT-3.1.4-2]: a connection with an identifier already connected takes
// the session over; the old connection is closed.
func TestConnectTakeover(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	old := client(t, b, "same")
	old.sub("takeover/#", 1)
	c := client(t, b, "same")
	old.expectClosedSilently(time.Second)
	c.sync()
	// The new connection is the live one: it can subscribe and receive.
	c.sub("takeover/x", 0)
	c.publish("takeover/x", "new", 0, false)
	c.expectPublish("takeover/x", "new")
}

// [MQTT-3.1.2-3] [MQTT-3.1.4-1]: a CONNECT with the reserved flag set is
// closed without a CONNACK.
func TestConnectReservedFlag(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	// "MQTT" level 4, flags 0x03 (clean session + reserved), keep alive 60, id "r".
	c.write(hx("10 0d 00 04 4d 51 54 54 04 03 00 3c 00 01 72"))
	c.expectClosedSilently(time.Second)

	// The same CONNECT with flags 0x02 is accepted: the test bytes are right.
	ok := dialRaw(t, b.Addr)
	ok.write(hx("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 72"))
	if ack := expectPacket[*packet.Connack](ok); ack.ReasonCode != packet.Success {
		t.Fatalf("valid CONNECT refused: %s", ack.ReasonCode)
	}
}

// Other malformed CONNECTs are closed without CONNACK [MQTT-3.1.4-1]:
// will QoS without the will flag [MQTT-3.1.2-11], will QoS 3
// [MQTT-3.1.2-14], password without user name [MQTT-3.1.2-22].
func TestConnectMalformedFlags(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	for name, flags := range map[string]string{
		"will QoS without will": "0a",
		"will retain no will":   "22",
		"will QoS 3":            "1e",
		"password no username":  "42",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, b.Addr)
			// Will flags need will topic and message; with the will flag
			// set they are "w" and "m".
			body := "00 04 4d 51 54 54 04 " + flags + " 00 3c 00 01 72"
			if name == "will QoS 3" {
				body += " 00 01 77 00 01 6d"
			}
			raw := hx(body)
			c.write(append([]byte{0x10, byte(len(raw))}, raw...))
			c.expectClosedSilently(time.Second)
		})
	}
}

// Keep alive is enforced at 1.5 times its value [MQTT-3.1.2-24]: a silent
// client with keep alive 1 s is dropped after about 1.5 s, not before 1 s;
// one that sends PINGREQ every 0.5 s stays, and every PINGREQ gets a
// PINGRESP [MQTT-3.12.4-1].
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())

	t.Run("silent client dropped", func(t *testing.T) {
		t.Parallel()
		p := connectPacket("silent")
		p.KeepAlive = 1
		c, _ := connectOK(t, b.Addr, p)
		start := time.Now()
		c.expectClosedSilently(3 * time.Second)
		if d := time.Since(start); d < time.Second {
			t.Errorf("dropped after %v, want about 1.5 s", d)
		}
	})

	t.Run("client active every 1.1 s stays", func(t *testing.T) {
		t.Parallel() // the limit is 1.5 x keep alive, not 1 x
		p := connectPacket("lazy")
		p.KeepAlive = 1
		c, _ := connectOK(t, b.Addr, p)
		for range 2 {
			time.Sleep(1100 * time.Millisecond)
			c.sync()
		}
	})

	t.Run("pinging client stays", func(t *testing.T) {
		t.Parallel()
		p := connectPacket("pinger")
		p.KeepAlive = 1
		c, _ := connectOK(t, b.Addr, p)
		for range 6 { // 3 s, twice the drop time
			time.Sleep(500 * time.Millisecond)
			c.sync()
		}
	})
}

// Keep alive 0 turns the mechanism off: the connection outlives the
// connect timeout and any keep-alive interval.
func TestKeepAliveZero(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ConnectTimeout = 200 * time.Millisecond
	b := runBroker(t, opts)
	p := connectPacket("forever")
	p.KeepAlive = 0
	c, _ := connectOK(t, b.Addr, p)
	time.Sleep(600 * time.Millisecond)
	c.sync()
}

// [MQTT-3.12.4-1]: every PINGREQ gets a PINGRESP, also several in one write.
func TestPingreq(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := client(t, b, "ping")
	c.send(&packet.Pingreq{}, &packet.Pingreq{}, &packet.Pingreq{})
	for range 3 {
		expectPacket[*packet.Pingresp](c)
	}
}

// Packets that arrive in the same segment as CONNECT are handled after it.
func TestConnectPipelined(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	c := dialRaw(t, b.Addr)
	c.send(connectPacket("pipe"),
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "pipe", QoS: 1}}},
		&packet.Publish{Topic: "pipe", Payload: []byte("p"), QoS: 1, PacketID: 2},
		&packet.Pingreq{})
	if ack := expectPacket[*packet.Connack](c); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %s", ack.ReasonCode)
	}
	expectPacket[*packet.Suback](c)
	// The PUBLISH to the subscriber and the PUBACK to the publisher are
	// both for this client; routing comes first.
	got := map[packet.Type]bool{}
	for range 3 {
		got[c.expect().Type()] = true
	}
	if !got[packet.PUBLISH] || !got[packet.PUBACK] || !got[packet.PINGRESP] {
		t.Fatalf("got %v, want PUBLISH, PUBACK and PINGRESP", got)
	}
}

// MQTT 3.1 ("MQIsdp", level 3) clients work: paho with protocol version 3
// publishes and receives at every QoS, also with a 3.1.1 peer.
func TestMQTT31Paho(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	sub31 := pahoClient(t, b.Addr, "sub31", 3, nil)
	pub31 := pahoClient(t, b.Addr, "pub31", 3, nil)
	sub311 := pahoClient(t, b.Addr, "sub311", 4, nil)
	ch31 := pahoMessages(t, sub31, "v31/#", 2, 10)
	ch311 := pahoMessages(t, sub311, "v31/#", 2, 10)
	for qos := byte(0); qos <= 2; qos++ {
		wait(t, "publish", pub31.Publish("v31/t", qos, false, []byte{'0' + qos}))
		for _, ch := range []<-chan mqtt.Message{ch31, ch311} {
			m := nextMessage(t, ch)
			if m.Topic() != "v31/t" || string(m.Payload()) != string('0'+qos) || m.Qos() != qos {
				t.Fatalf("got %q %q QoS %d, want QoS %d", m.Topic(), m.Payload(), m.Qos(), qos)
			}
		}
	}
}
