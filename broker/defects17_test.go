package broker_test

// Protocol defects of issue 17, each with a test that failed before its fix.

import (
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Issue 17.5: a message forwarded at once keeps its Message Expiry
// Interval: the time waited is subtracted in whole seconds rounded up, so
// 60 stays 60, not 59 [MQTT-3.3.2-6]. Live, retained and will messages.
func TestDefect17_5_ForwardedExpiryRoundedUp_MQTT_3_3_2_6(t *testing.T) {
	b := runBroker(t, testOptions())
	sub := v5Client(t, b, "exp-sub")
	sub.v5Sub(0, packet.Subscription{Filter: "exp/#", QoS: 1})
	check := func(what string, p *packet.Publish, want uint32) {
		t.Helper()
		if !p.Properties.Has(packet.PropMessageExpiry) || p.Properties.MessageExpiry != want {
			t.Errorf("%s: Message Expiry Interval %d (present %v), want %d [MQTT-3.3.2-6]",
				what, p.Properties.MessageExpiry, p.Properties.Has(packet.PropMessageExpiry), want)
		}
	}

	pub := v5Client(t, b, "exp-pub")
	for _, secs := range []uint32{60, 3600} {
		m := &packet.Publish{Topic: "exp/live", Payload: []byte("x"), QoS: 1}
		m.Properties.SetUint(packet.PropMessageExpiry, secs)
		pub.v5Publish(m)
		got := sub.expectPublish("exp/live", "x")
		check("live", got, secs)
		sub.ack(got)
	}

	r := &packet.Publish{Topic: "exp/retained", Payload: []byte("r"), QoS: 1, Retain: true}
	r.Properties.SetUint(packet.PropMessageExpiry, 3600)
	pub.v5Publish(r)
	sub.ack(sub.expectPublish("exp/retained", "r"))
	late := v5Client(t, b, "exp-late")
	late.v5Sub(0, packet.Subscription{Filter: "exp/retained", QoS: 1})
	got := late.expectPublish("exp/retained", "r")
	check("retained", got, 3600)
	late.ack(got)

	w := v5Connect("exp-will")
	w.WillFlag = true
	w.Will = packet.Will{Topic: "exp/will", Payload: []byte("w"), QoS: 1}
	w.Will.Properties.SetUint(packet.PropMessageExpiry, 60)
	wc, _ := v5ConnectOK(t, b.Addr, w)
	wc.nc.Close() // no DISCONNECT: the will goes
	got = sub.expectPublish("exp/will", "w")
	check("will", got, 60)
	sub.ack(got)
}

// Issue 17.6: a payload with Payload Format Indicator 1 only has to be
// well-formed UTF-8 (5.0 section 3.3.2.3.2): U+0000 is banned in UTF-8
// Encoded Strings [MQTT-1.5.4-2], not in payloads. PUBLISH at each QoS and
// a will carrying "line1\0line2" are accepted and delivered as sent.
func TestDefect17_6_NullCharInUTF8Payload(t *testing.T) {
	b := runBroker(t, testOptions())
	const payload = "line1\x00line2"
	sub := v5Client(t, b, "nul-sub")
	sub.v5Sub(0, packet.Subscription{Filter: "nul/#", QoS: 2})
	pub := v5Client(t, b, "nul-pub")
	for qos := byte(0); qos <= 2; qos++ {
		m := &packet.Publish{Topic: "nul/pub", Payload: []byte(payload), QoS: qos}
		m.Properties.SetUint(packet.PropPayloadFormat, 1)
		if rc := pub.v5Publish(m); rc.IsError() {
			t.Fatalf("QoS %d PUBLISH with U+0000 in a UTF-8 payload: %s (%#x), want it accepted", qos, rc, byte(rc))
		}
		got := sub.expectPublish("nul/pub", payload)
		sub.ack(got)
	}
	pub.sync() // still connected (QoS 0 was refused with DISCONNECT 0x99)

	w := v5Connect("nul-will")
	w.WillFlag = true
	w.Will = packet.Will{Topic: "nul/will", Payload: []byte(payload), QoS: 1}
	w.Will.Properties.SetUint(packet.PropPayloadFormat, 1)
	wc, _ := v5ConnectOK(t, b.Addr, w) // was CONNACK 0x99
	wc.nc.Close()
	sub.ack(sub.expectPublish("nul/will", payload))

	// Ill-formed UTF-8 is still refused.
	bad := &packet.Publish{Topic: "nul/pub", Payload: []byte{'a', 0xc0, 0x80}, QoS: 1}
	bad.Properties.SetUint(packet.PropPayloadFormat, 1)
	if rc := pub.v5Publish(bad); rc != packet.PayloadFormatInvalid {
		t.Fatalf("overlong U+0000: %s, want PayloadFormatInvalid", rc)
	}
}

// Issue 17 "Also" (c): a client's DISCONNECT may carry only the reason
// codes the table gives to a client [MQTT-3.14.2-1]. 0x8E, 0x9C and the
// other server-only codes are a protocol error: DISCONNECT 0x82, and the
// will is published as after any error.
func TestDefect17_ClientDisconnectServerOnlyCode_MQTT_3_14_2_1(t *testing.T) {
	b := runBroker(t, testOptions())
	watcher := v5Client(t, b, "dc-watch")
	watcher.v5Sub(0, packet.Subscription{Filter: "dc/#", QoS: 1})
	serverOnly := []packet.ReasonCode{0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}
	for _, rc := range serverOnly {
		w := v5Connect("dc-client")
		w.WillFlag = true
		w.Will = packet.Will{Topic: "dc/will", Payload: []byte{byte(rc)}, QoS: 1}
		c, _ := v5ConnectOK(t, b.Addr, w)
		c.send(&packet.Disconnect{ReasonCode: rc})
		c.v5ExpectDisconnect(packet.ProtocolError)
		got := watcher.expectPublish("dc/will", string([]byte{byte(rc)}))
		watcher.ack(got)
	}
	// A code a client may send still ends the connection normally.
	for _, rc := range []packet.ReasonCode{0x00, 0x80, 0x93, 0x98} {
		c := v5Client(t, b, "dc-ok")
		c.send(&packet.Disconnect{ReasonCode: rc})
		if got := c.expectClosed(waitFor); len(got) > 0 {
			t.Fatalf("DISCONNECT %#x: broker answered %s, want a silent close", byte(rc), got[0].Type())
		}
	}
	watcher.v5ExpectNothing()
}

// Issue 17 "Also" (a): the Receive Maximum quota starts afresh on each
// connection (5.0 section 4.9) [MQTT-4.9.0-1]: with receive_maximum 1, a
// QoS 2 message still awaiting PUBREL from the previous connection does
// not count against the new one.
func TestDefect17_ReceiveMaximumFreshPerConnection_MQTT_4_9_0_1(t *testing.T) {
	o := testOptions()
	o.ReceiveMaximum = 1
	b := runBroker(t, o)
	c, _ := v5ConnectOK(t, b.Addr, v5Persistent("rm-fresh", true, 300))
	c.send(&packet.Publish{Topic: "rm/a", Payload: []byte("1"), QoS: 2, PacketID: 1})
	if rec := expectPacket[*packet.Pubrec](c); rec.ReasonCode.IsError() {
		t.Fatalf("first QoS 2: PUBREC %s", rec.ReasonCode)
	}
	c.nc.Close() // leaves id 1 awaiting PUBREL in the session
	b.waitOffline(t, "rm-fresh")

	c, ack := v5ConnectOK(t, b.Addr, v5Persistent("rm-fresh", false, 300))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	c.send(&packet.Publish{Topic: "rm/a", Payload: []byte("2"), QoS: 2, PacketID: 2})
	p := c.expect()
	if rec, ok := p.(*packet.Pubrec); !ok || rec.PacketID != 2 || rec.ReasonCode.IsError() {
		t.Fatalf("QoS 2 on the new connection: got %s %s, want PUBREC for id 2 (the quota is fresh)", p.Type(), describe(p))
	}
	// Both flows complete; the quota of 1 is then enforced as before.
	c.send(&packet.Pubrel{PacketID: 1})
	expectPacket[*packet.Pubcomp](c)
	c.send(&packet.Publish{Topic: "rm/a", Payload: []byte("3"), QoS: 2, PacketID: 3})
	c.v5ExpectDisconnect(packet.ReceiveMaximumExceeded)
}

// tooLargeConnect is a persistent 5.0 CONNECT with the given Receive
// Maximum and Maximum Packet Size (0: none).
func tooLargeConnect(id string, clean bool, recvMax, maxPacket uint32) *packet.Connect {
	p := v5Persistent(id, clean, 300)
	p.Properties.SetUint(packet.PropReceiveMaximum, recvMax)
	if maxPacket > 0 {
		p.Properties.SetUint(packet.PropMaximumPacketSize, maxPacket)
	}
	return p
}

// Issue 17.2: a message in flight that is too large for the Maximum Packet
// Size the client gives on reconnecting is discarded as if delivered
// [MQTT-3.1.2-25] when the session resumes, as on its first send: it must
// not hold the Receive Maximum window, so the messages after it flow.
func TestDefect17_2_InflightTooLargeAfterResume_MQTT_3_1_2_25(t *testing.T) {
	b := runBroker(t, testOptions())
	big := strings.Repeat("B", 500)
	pub := v5Client(t, b, "tl-pub")

	sub, _ := v5ConnectOK(t, b.Addr, tooLargeConnect("tl-sub", true, 1, 0))
	sub.v5Sub(0, packet.Subscription{Filter: "tl/#", QoS: 1})
	pub.v5Pub("tl/a", big, 1, false)
	sub.expectPublish("tl/a", big) // not acknowledged
	sub.nc.Close()
	b.waitOffline(t, "tl-sub")
	pub.v5Pub("tl/a", "small1", 1, false)
	pub.v5Pub("tl/a", "small2", 1, false)

	sub, _ = v5ConnectOK(t, b.Addr, tooLargeConnect("tl-sub", false, 1, 100))
	for _, want := range []string{"small1", "small2"} {
		sub.ack(sub.expectPublish("tl/a", want))
	}
	sub.v5ExpectNothing()
}

// Issue 17.2, the other resend path: a too-large message that waited
// beyond a smaller Receive Maximum is discarded when the window reaches it
// [MQTT-3.1.2-25].
func TestDefect17_2_DeferredResendTooLarge_MQTT_3_1_2_25(t *testing.T) {
	b := runBroker(t, testOptions())
	big := strings.Repeat("B", 500)
	pub := v5Client(t, b, "tl2-pub")

	sub, _ := v5ConnectOK(t, b.Addr, tooLargeConnect("tl2-sub", true, 2, 0))
	sub.v5Sub(0, packet.Subscription{Filter: "tl2/#", QoS: 1})
	pub.v5Pub("tl2/a", "s1", 1, false)
	pub.v5Pub("tl2/a", big, 1, false)
	sub.expectPublish("tl2/a", "s1")
	sub.expectPublish("tl2/a", big)
	sub.nc.Close() // neither acknowledged
	b.waitOffline(t, "tl2-sub")
	pub.v5Pub("tl2/a", "s2", 1, false)

	sub, _ = v5ConnectOK(t, b.Addr, tooLargeConnect("tl2-sub", false, 1, 100))
	first := sub.expectPublish("tl2/a", "s1")
	if !first.Dup {
		t.Errorf("re-sent s1 without DUP")
	}
	sub.ack(first)
	sub.ack(sub.expectPublish("tl2/a", "s2"))
	sub.v5ExpectNothing()
}

// Issue 17 "Also" (b): a CONNACK too large for the client's Maximum Packet
// Size leaves out its Reason String and User Properties before the broker
// gives up on it [MQTT-3.2.2-19] [MQTT-3.2.2-20]. A refusal CONNACK
// carries the reason as a Reason String; a client whose Maximum Packet
// Size cannot hold it still gets the CONNACK with its reason code, not a
// silent close.
func TestDefect17_ConnackTrimmedToMaxPacketSize_MQTT_3_2_2_19(t *testing.T) {
	o := testOptions()
	o.MaxClientIDLength = 23
	b := runBroker(t, o)

	_, ack := v5ConnectRaw(t, b.Addr, v5Connect("a-client-identifier-longer-than-23"))
	if ack.ReasonCode != packet.ClientIdentifierNotValid || !ack.Properties.Has(packet.PropReasonString) || ack.Properties.ReasonString == "" {
		t.Fatalf("refusal CONNACK %s with reason string %q, want 0x85 with the reason", ack.ReasonCode, ack.Properties.ReasonString)
	}

	p := v5Connect("a-client-identifier-longer-than-23")
	p.Properties.SetUint(packet.PropMaximumPacketSize, 8)
	c, ack := v5ConnectRaw(t, b.Addr, p)
	if ack.ReasonCode != packet.ClientIdentifierNotValid {
		t.Fatalf("CONNACK %s, want 0x85", ack.ReasonCode)
	}
	if ack.Properties.Has(packet.PropReasonString) || len(ack.Properties.User) > 0 {
		t.Fatalf("CONNACK keeps its reason string %q beyond the client's Maximum Packet Size 8", ack.Properties.ReasonString)
	}
	if size := ack.Size(packet.V5); size > 8 {
		t.Fatalf("CONNACK of %d bytes, above the client's Maximum Packet Size 8 5.0 [MQTT-3.1.2-24]", size)
	}
	c.expectClosedSilently(waitFor)
}

// Issue 17.3: only a complete control packet resets the keep-alive. With
// Keep Alive 1 a client that announces a 1,000-byte PUBLISH and then sends
// one byte every 200 ms is cut off 1.5 s after its last complete packet
// (5.0 [MQTT-3.1.2-22], 3.1.1 [MQTT-3.1.2-24]), not kept open by the
// trickle. The bound checked is 4.5 s (three times the deadline), so a
// loaded machine does not fail it; before the fix the trickle kept the
// connection open for ever.
func TestDefect17_3_KeepAliveNeedsCompletePackets(t *testing.T) {
	b := runBroker(t, testOptions())
	for _, v5 := range []bool{false, true} {
		t.Run(map[bool]string{false: "3.1.1 MQTT-3.1.2-24", true: "5.0 MQTT-3.1.2-22"}[v5], func(t *testing.T) {
			t.Parallel()
			var c *rawClient
			if v5 {
				p := v5Connect("ka-trickle5")
				p.KeepAlive = 1
				c, _ = v5ConnectOK(t, b.Addr, p)
			} else {
				p := connectPacket("ka-trickle3")
				p.KeepAlive = 1
				c, _ = connectOK(t, b.Addr, p)
			}
			c.sync() // a complete packet: the deadline runs from here
			start := time.Now()
			if err := c.write([]byte{0x30, 0xe8, 0x07}); err != nil { // PUBLISH, 1,000 bytes announced
				t.Fatal(err)
			}
			closed := make(chan []packet.Packet, 1)
			go func() {
				var got []packet.Packet
				for {
					p, err := c.read(6 * time.Second)
					if err != nil {
						closed <- got
						return
					}
					got = append(got, p)
				}
			}()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case got := <-closed:
					if time.Since(start) > 4500*time.Millisecond {
						t.Fatalf("closed only after %v", time.Since(start))
					}
					if v5 && (len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.KeepAliveTimeout) {
						t.Fatalf("got %d packets before the close, want DISCONNECT 0x8D", len(got))
					}
					return
				case <-tick.C:
					if time.Since(start) > 4500*time.Millisecond {
						t.Fatalf("still open %v after the last complete packet with Keep Alive 1: a trickle of bytes reset the keep-alive", time.Since(start))
					}
					c.write([]byte{'x'}) // one more byte, never a complete packet
				}
			}
		})
	}
}
