package broker_test

import (
	"strings"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// authBroker runs a broker with a password file (alice/wonder, bob/builder)
// and a Mosquitto-style ACL.
func authBroker(t *testing.T, anon broker.Anonymous) *testBroker {
	t.Helper()
	pw := auth.NewPasswordFile()
	pw.Params = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if err := pw.Set("alice", []byte("wonder")); err != nil {
		t.Fatal(err)
	}
	if err := pw.Set("bob", []byte("builder")); err != nil {
		t.Fatal(err)
	}
	acl, err := auth.ParseACL("test.acl", strings.NewReader(`
topic read public/#
user alice
topic readwrite alice/#
topic write public/#
user bob
topic read alice/#
pattern readwrite home/%u/#
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Authenticator = pw
	opts.Authorizer = acl
	l := listen(t)
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(l, broker.ListenerOptions{Name: "auth-test", Anonymous: anon})
	t.Cleanup(func() { srv.Close() })
	return &testBroker{Server: srv, Addr: l.Addr().String()}
}

func login(id, user, pass string, version byte) *packet.Connect {
	p := &packet.Connect{Version: version, CleanStart: true, ClientID: id, KeepAlive: 30}
	if user != "" {
		p.UsernameFlag, p.Username = true, user
	}
	if pass != "" {
		p.PasswordFlag, p.Password = true, []byte(pass)
	}
	return p
}

// 5.0 [MQTT-3.1.4-2]: credentials are checked; 3.1.1 gets return codes 4 and 5,
// 5.0 gets 0x86 and 0x87, and anonymous access follows the listener.
func TestAuthenticationRefusals(t *testing.T) {
	b := authBroker(t, broker.AnonymousDefault)
	cases := []struct {
		name       string
		user, pass string
		version    byte
		want       packet.ReasonCode
	}{
		{"good 3.1.1", "alice", "wonder", packet.V311, packet.Success},
		{"good 5.0", "bob", "builder", packet.V5, packet.Success},
		{"wrong password 3.1.1", "alice", "nope", packet.V311, packet.BadUserNameOrPassword},
		{"wrong password 5.0", "alice", "nope", packet.V5, packet.BadUserNameOrPassword},
		{"unknown user", "mallory", "x", packet.V5, packet.BadUserNameOrPassword},
		{"anonymous refused once a password file is set", "", "", packet.V311, packet.NotAuthorized},
		{"anonymous refused 5.0", "", "", packet.V5, packet.NotAuthorized},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			connect := connectRaw
			if tc.version == packet.V5 {
				connect = v5ConnectRaw
			}
			c, ack := connect(t, b.Addr, login("c"+string(rune('a'+i)), tc.user, tc.pass, tc.version))
			if ack.ReasonCode != tc.want {
				t.Fatalf("CONNACK %v, want %v", ack.ReasonCode, tc.want)
			}
			if tc.want != packet.Success {
				if ack.SessionPresent {
					t.Errorf("refusal with session present 1 [MQTT-3.2.2-4]")
				}
				c.expectClosed(waitFor) // [MQTT-3.2.2-5]
			}
		})
	}

	open := authBroker(t, broker.AnonymousAllow)
	connectOK(t, open.Addr, login("anon", "", "", packet.V311))
}

// The ACL matrix over the wire: a refused PUBLISH is acknowledged and
// dropped in 3.1.1 [MQTT-3.3.5-2] and answered 0x87 in 5.0; a refused
// SUBSCRIBE gets 0x80 / 0x87; %u patterns apply per user.
func TestAuthorizationMatrix(t *testing.T) {
	b := authBroker(t, broker.AnonymousDefault)
	alice, _ := connectOK(t, b.Addr, login("alice-1", "alice", "wonder", packet.V311))
	bob, _ := v5ConnectOK(t, b.Addr, login("bob-1", "bob", "builder", packet.V5))

	codes := alice.subscribe(
		packet.Subscription{Filter: "alice/#", QoS: 1},
		packet.Subscription{Filter: "public/#", QoS: 1},
		packet.Subscription{Filter: "home/bob/#", QoS: 1},
		packet.Subscription{Filter: "home/alice/x", QoS: 1},
	)
	// "topic read public/#" stands before any user line: anonymous only.
	want := []packet.ReasonCode{1, packet.UnspecifiedError, packet.UnspecifiedError, 1}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("alice SUBACK[%d] = %v, want %v", i, codes[i], want[i])
		}
	}
	codes = bob.v5Subscribe(0,
		packet.Subscription{Filter: "alice/#", QoS: 1},
		packet.Subscription{Filter: "secret/#", QoS: 1},
	)
	if codes[0] != packet.GrantedQoS1 || codes[1] != packet.NotAuthorized {
		t.Errorf("bob SUBACK = %v, want [granted QoS 1, not authorized]", codes)
	}

	// bob may not write to alice/...: 0x87 in 5.0, nothing delivered.
	if rc := bob.v5Pub("alice/inbox", "from bob", 1, false); rc != packet.NotAuthorized {
		t.Errorf("bob PUBACK to alice/inbox = %v, want not authorized", rc)
	}
	// alice may not write to home/bob/...: acknowledged, dropped (3.1.1).
	alice.publish("home/bob/door", "open", 1, false)
	// alice writes alice/inbox: bob (read alice/#) and alice get it.
	alice.publish("alice/inbox", "hello", 0, false)
	alice.expectPublish("alice/inbox", "hello")
	bp := bob.expectPublish("alice/inbox", "hello")
	bob.ack(bp)
	alice.sync()
	bob.sync()

	// $SYS is the broker's: clients cannot publish there.
	alice.publish("$SYS/broker/version", "fake", 1, false)
	alice.sync()
}

// paho (3.1.1) with a bad password is refused with "bad user name or password".
func TestAuthenticationPaho(t *testing.T) {
	b := authBroker(t, broker.AnonymousDefault)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID("paho-bad").
		SetUsername("alice").SetPassword("wrong").SetAutoReconnect(false).SetProtocolVersion(4)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	tok.WaitTimeout(waitFor)
	if tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("paho connected with a wrong password")
	}
	pc := pahoClient(t, b.Addr, "paho-good", 4, func(o *mqtt.ClientOptions) { o.SetUsername("alice").SetPassword("wonder") })
	pc.Disconnect(0)
}

// Reload swaps the ACL without dropping connections: the new rule holds
// for the connected client at once.
func TestReloadACLKeepsConnections(t *testing.T) {
	opts := testOptions()
	strict, err := auth.ParseACL("v1.acl", strings.NewReader("topic read nothing/here\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Authorizer = strict
	b := runBroker(t, opts)
	c, _ := connectOK(t, b.Addr, connectPacket("reloader"))
	if codes := c.subscribe(packet.Subscription{Filter: "news/#"}); codes[0] != packet.UnspecifiedError {
		t.Fatalf("before reload SUBACK %v, want 0x80", codes[0])
	}
	open, err := auth.ParseACL("v2.acl", strings.NewReader("topic readwrite news/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	next := testOptions()
	next.Authorizer = open
	if err := b.Reload(next); err != nil {
		t.Fatal(err)
	}
	if codes := c.subscribe(packet.Subscription{Filter: "news/#"}); codes[0] != packet.GrantedQoS0 {
		t.Fatalf("after reload SUBACK %v, want granted", codes[0])
	}
	c.publish("news/today", "fresh", 0, false)
	c.expectPublish("news/today", "fresh")

	bad := testOptions()
	bad.MaxInflight = 0
	if err := b.Reload(bad); err == nil {
		t.Error("Reload accepted invalid options")
	}
	c.sync() // still connected
}
