package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

func scramBroker(t *testing.T) *testBroker {
	t.Helper()
	sc := auth.NewSCRAM()
	cred, err := auth.NewSCRAMCredential([]byte("s3cret"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	sc.SetUser("carol", cred)
	opts := testOptions()
	opts.EnhancedAuth = []auth.EnhancedAuth{sc}
	return runBroker(t, opts)
}

func scramConnect(id string, first []byte) *packet.Connect {
	p := v5Connect(id)
	p.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
	p.Properties.SetBinary(packet.PropAuthData, first)
	return p
}

// SCRAM-SHA-256 over the AUTH exchange: AUTH 0x18 carries the method
// [MQTT-4.12.0-2] [MQTT-4.12.0-5], CONNACK repeats it with the server's
// proof, and re-authentication (0x19) ends with AUTH 0x00 [MQTT-4.12.1-1].
func TestEnhancedAuthSCRAM(t *testing.T) {
	b := scramBroker(t)
	cl := &auth.SCRAMClient{User: "carol", Password: "s3cret"}
	c := v5Dial(t, b.Addr)
	c.send(scramConnect("carol-1", cl.First()))
	a := expectPacket[*packet.Auth](c)
	if a.ReasonCode != packet.ContinueAuthentication || a.Properties.AuthMethod != "SCRAM-SHA-256" {
		t.Fatalf("AUTH %v method %q, want 0x18 SCRAM-SHA-256", a.ReasonCode, a.Properties.AuthMethod)
	}
	final, err := cl.Final(a.Properties.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	reply := &packet.Auth{ReasonCode: packet.ContinueAuthentication}
	reply.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
	reply.Properties.SetBinary(packet.PropAuthData, final)
	c.send(reply)
	ack := expectPacket[*packet.Connack](c)
	if ack.ReasonCode != packet.Success || ack.Properties.AuthMethod != "SCRAM-SHA-256" {
		t.Fatalf("CONNACK %v method %q", ack.ReasonCode, ack.Properties.AuthMethod)
	}
	if err := cl.Verify(ack.Properties.AuthData); err != nil {
		t.Fatalf("server proof: %v", err)
	}

	// Re-authentication on the live connection.
	re := &auth.SCRAMClient{User: "carol", Password: "s3cret"}
	start := &packet.Auth{ReasonCode: packet.ReAuthenticate}
	start.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
	start.Properties.SetBinary(packet.PropAuthData, re.First())
	c.send(start)
	a = expectPacket[*packet.Auth](c)
	final, err = re.Final(a.Properties.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	reply.Properties.SetBinary(packet.PropAuthData, final)
	c.send(reply)
	done := expectPacket[*packet.Auth](c)
	if done.ReasonCode != packet.Success {
		t.Fatalf("re-authentication ended with %v, want success", done.ReasonCode)
	}
	if err := re.Verify(done.Properties.AuthData); err != nil {
		t.Fatal(err)
	}
	c.sync()
}

// A wrong password ends the exchange with CONNACK 0x87 and a close
// [MQTT-4.12.0-4]; an unknown method gets 0x8C [MQTT-4.12.0-1].
func TestEnhancedAuthRefusals(t *testing.T) {
	b := scramBroker(t)
	cl := &auth.SCRAMClient{User: "carol", Password: "wrong"}
	c := v5Dial(t, b.Addr)
	c.send(scramConnect("carol-2", cl.First()))
	a := expectPacket[*packet.Auth](c)
	final, _ := cl.Final(a.Properties.AuthData)
	reply := &packet.Auth{ReasonCode: packet.ContinueAuthentication}
	reply.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
	reply.Properties.SetBinary(packet.PropAuthData, final)
	c.send(reply)
	if ack := expectPacket[*packet.Connack](c); ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("CONNACK %v, want not authorized", ack.ReasonCode)
	}
	c.expectClosed(waitFor)

	p := v5Connect("kerb")
	p.Properties.SetString(packet.PropAuthMethod, "GSSAPI")
	v5ExpectConnackRefused(t, b.Addr, p, packet.BadAuthenticationMethod)

	// AUTH on a connection that did not use enhanced authentication.
	plain, _ := v5ConnectOK(t, b.Addr, v5Connect("plain"))
	stray := &packet.Auth{ReasonCode: packet.ReAuthenticate}
	stray.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
	plain.send(stray)
	plain.v5ExpectDisconnect(packet.ProtocolError)
}

// With a Server Reference configured, shutdown sends 5.0 clients to the
// other server with 0x9C.
func TestServerReferenceOnShutdown(t *testing.T) {
	opts := testOptions()
	opts.ServerReference = "other.example:1883"
	b := runBroker(t, opts)
	c, _ := v5ConnectOK(t, b.Addr, v5Connect("moving"))
	go b.Close()
	d := c.v5ExpectDisconnect(packet.UseAnotherServer)
	if d.Properties.ServerReference != "other.example:1883" {
		t.Errorf("server reference %q", d.Properties.ServerReference)
	}
}
