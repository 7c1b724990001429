package broker_test

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// Issue 16.3: the cap on the User Properties of one packet holds for
// CONNECT too, its will's included: a will is kept for the whole life of
// the connection, and each empty user property, 5 bytes on the wire, costs
// 32 in memory. CONNECT is decoded before the connection's own decoder
// exists, and that first decoder had no cap, so any client, before it
// authenticates, could hold ~6 MiB per 1 MiB CONNECT.
func TestMaxUserPropertiesConnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	max := broker.DefaultOptions().MaxUserProperties

	ok := v5Connect("connect-props-ok")
	ok.Properties.User = make([]packet.UserProperty, max)
	ok.WillFlag, ok.Will = true, packet.Will{Topic: "will/ok", Payload: []byte("w")}
	ok.Will.Properties.User = make([]packet.UserProperty, max)
	v5ConnectOK(t, b.Addr, ok)

	for _, where := range []string{"CONNECT", "will"} {
		p := v5Connect("connect-props-" + where)
		p.WillFlag, p.Will = true, packet.Will{Topic: "will/bad", Payload: []byte("w")}
		props := &p.Properties
		if where == "will" {
			props = &p.Will.Properties
		}
		props.User = make([]packet.UserProperty, 200_000)
		c, ack := v5ConnectRaw(t, b.Addr, p)
		if ack.ReasonCode != packet.QuotaExceeded {
			t.Errorf("CONNECT with 200,000 user properties in its %s: CONNACK %s (%#x), want Quota exceeded (0x97)",
				where, ack.ReasonCode, byte(ack.ReasonCode))
		}
		c.expectClosed(waitFor)
	}
}

// The same cap for the AUTH packets of an enhanced authentication before
// CONNACK, which the handshake decodes with a decoder of its own: an AUTH
// over the cap ends the exchange with a refusal, even with the right proof.
func TestMaxUserPropertiesAuthExchange(t *testing.T) {
	t.Parallel()
	b := scramBroker(t)
	for _, n := range []int{broker.DefaultOptions().MaxUserProperties, 200_000} {
		cl := &auth.SCRAMClient{User: "carol", Password: "s3cret"}
		c := v5Dial(t, b.Addr)
		c.send(scramConnect(fmt.Sprint("carol-props-", n), cl.First()))
		a := expectPacket[*packet.Auth](c)
		final, err := cl.Final(a.Properties.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		reply := &packet.Auth{ReasonCode: packet.ContinueAuthentication}
		reply.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
		reply.Properties.SetBinary(packet.PropAuthData, final)
		reply.Properties.User = make([]packet.UserProperty, n)
		c.send(reply)
		ack := expectPacket[*packet.Connack](c)
		if over := n > broker.DefaultOptions().MaxUserProperties; over != (ack.ReasonCode != packet.Success) {
			t.Errorf("AUTH with %d user properties: CONNACK %s (%#x); want a refusal only over the cap", n, ack.ReasonCode, byte(ack.ReasonCode))
		}
		c.nc.Close()
	}
}
