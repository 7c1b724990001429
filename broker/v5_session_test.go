package broker_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5Reconnect connects id with Clean Start 0 and the given expiry and
// returns the client and its Session Present flag.
func v5Reconnect(t *testing.T, b *testBroker, id string, expiry uint32) (*rawClient, bool) {
	t.Helper()
	c, ack := v5ConnectOK(t, b.Addr, v5Persistent(id, false, expiry))
	return c, ack.SessionPresent
}

// v5Leave sends DISCONNECT (reason 0, optional properties) and waits until
// the broker has finished with the connection.
func (c *rawClient) v5Leave(b *testBroker, id string, props *packet.Properties) {
	c.t.Helper()
	d := &packet.Disconnect{}
	if props != nil {
		d.Properties = *props
	}
	c.send(d)
	c.expectClosedSilently(waitFor)
	b.waitOffline(c.t, id)
}

// v5WaitSessionGone waits until the broker holds no session for id.
func (b *testBroker) v5WaitSessionGone(t *testing.T, id string) {
	t.Helper()
	eventually(t, "session "+id+" to end", func() bool {
		exists, _ := b.SessionState(id)
		return !exists
	})
}

// [MQTT-3.2.2-2] [MQTT-3.2.2-3] [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.1.2-6]:
// Session Present is 0 for Clean Start 1, 1 for Clean Start 0 when a
// session exists, 0 when none does (never made, ended by Session Expiry
// Interval 0, or discarded by Clean Start 1).
func TestV5SessionPresent_MQTT_3_2_2_2_MQTT_3_2_2_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "v5-present"
	steps := []struct {
		clean   bool
		expiry  uint32
		present bool
		why     string
	}{
		{false, 60, false, "Clean Start 0, no session yet [MQTT-3.2.2-3] [MQTT-3.1.2-6]"},
		{false, 60, true, "Clean Start 0, session kept for 60 s [MQTT-3.2.2-3] [MQTT-3.1.2-5]"},
		{true, 60, false, "Clean Start 1 [MQTT-3.2.2-2] [MQTT-3.1.2-4]"},
		{false, 0, true, "Clean Start 0 resumes it, expiry now 0 [MQTT-3.2.2-3]"},
		{false, 60, false, "the expiry-0 session ended at disconnect [MQTT-3.2.2-3]"},
		{true, 0, false, "Clean Start 1 discards the 60 s session [MQTT-3.2.2-2]"},
		{false, 0, false, "nothing left [MQTT-3.2.2-3]"},
	}
	for i, s := range steps {
		c, ack := v5ConnectOK(t, b.Addr, v5Persistent(id, s.clean, s.expiry))
		if ack.SessionPresent != s.present {
			t.Errorf("step %d, %s: Session Present %v, want %v", i, s.why, ack.SessionPresent, s.present)
		}
		c.v5Leave(b, id, nil)
	}
}

// [MQTT-3.1.2-23] [MQTT-4.1.0-2]: with Session Expiry Interval 0 (or
// absent) the session ends with the connection, however it ends: its
// subscriptions are gone and nothing is queued for it.
func TestV5SessionExpiryZeroEndsSession_MQTT_4_1_0_2(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	for _, tc := range []struct {
		name  string
		props bool // Session Expiry Interval 0 sent explicitly
		end   func(c *rawClient)
	}{
		{"absent, DISCONNECT", false, func(c *rawClient) { c.send(&packet.Disconnect{}) }},
		{"explicit 0, network close", true, func(c *rawClient) { c.nc.Close() }},
	} {
		id := v5ID("zero")
		p := v5Connect(id)
		p.CleanStart = false
		if tc.props {
			p.Properties.SetUint(packet.PropSessionExpiry, 0)
		}
		c, _ := v5ConnectOK(t, b.Addr, p)
		c.v5Sub(0, packet.Subscription{Filter: "zero/" + id, QoS: 1})
		tc.end(c)
		b.v5WaitSessionGone(t, id)
		if rc := pub.v5Pub("zero/"+id, "for nobody", 1, false); rc != packet.NoMatchingSubscribers {
			t.Errorf("%s: PUBACK %s, want no matching subscribers: the subscription outlived the session", tc.name, rc)
		}
		c, present := v5Reconnect(t, b, id, 60)
		if present {
			t.Errorf("%s: Session Present 1 after an expiry-0 session ended [MQTT-3.2.2-3]", tc.name)
		}
		c.v5ExpectNothing()
		c.v5Leave(b, id, nil)
	}
}

// [MQTT-4.1.0-2] [MQTT-3.1.2-23]: a session with a short Session Expiry
// Interval survives while offline for less than the interval (with its
// queued messages), and is deleted once the interval has passed.
func TestV5SessionExpiryInterval_MQTT_4_1_0_2(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	const id = "v5-short"

	c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 5))
	c.v5Sub(0, packet.Subscription{Filter: "short/#", QoS: 1})
	c.v5Leave(b, id, nil)
	pub.v5Pub("short/a", "kept", 1, false)
	c, present := v5Reconnect(t, b, id, 1)
	if !present {
		t.Fatalf("Session Present 0 within the 5 s expiry interval [MQTT-3.1.2-23]")
	}
	m := c.expectPublish("short/a", "kept")
	c.ack(m)

	// The new CONNECT set 1 s: offline now, it must end after about 1 s.
	c.nc.Close()
	b.waitOffline(t, id)
	left := time.Now()
	pub.v5Pub("short/a", "lost", 1, false)
	if exists, _ := b.SessionState(id); !exists {
		t.Fatalf("session ended at once, want it kept for 1 s")
	}
	b.v5WaitSessionGone(t, id)
	if d := time.Since(left); d < 900*time.Millisecond {
		t.Errorf("session with expiry 1 s ended after %v", d)
	}
	c, present = v5Reconnect(t, b, id, 0)
	if present {
		t.Errorf("Session Present 1 after the expiry interval passed [MQTT-4.1.0-2]")
	}
	c.v5ExpectNothing() // the queued "lost" went with the session
}

// 5.0 3.1.2.11.2: Session Expiry Interval 0xFFFFFFFF means the session
// does not expire.
func TestV5SessionExpiryNever(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	const id = "v5-never"
	c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 0xFFFFFFFF))
	c.v5Sub(0, packet.Subscription{Filter: "never", QoS: 1})
	c.nc.Close()
	b.waitOffline(t, id)
	time.Sleep(1500 * time.Millisecond) // longer than any short interval used here
	pub := v5Client(t, b, "pub")
	if rc := pub.v5Pub("never", "still there", 1, false); rc != packet.Success {
		t.Errorf("PUBACK %s: the never-expiring session lost its subscription", rc)
	}
	c, present := v5Reconnect(t, b, id, 0xFFFFFFFF)
	if !present {
		t.Fatalf("Session Present 0 for a session with expiry 0xFFFFFFFF")
	}
	c.expectPublish("never", "still there")
}

// 5.0 3.14.2.2.2: a Session Expiry Interval in DISCONNECT replaces the one
// from CONNECT; changing it from 0 to non-zero is a Protocol Error, and
// such a DISCONNECT is not a valid one: the broker answers DISCONNECT 0x82,
// the session still ends, and the will is published.
func TestV5DisconnectSessionExpiry(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	expiry := func(secs uint32) *packet.Properties {
		var p packet.Properties
		p.SetUint(packet.PropSessionExpiry, secs)
		return &p
	}

	t.Run("60 to 0 ends the session at once", func(t *testing.T) {
		t.Parallel()
		id := v5ID("to0")
		c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
		c.v5Leave(b, id, expiry(0))
		b.v5WaitSessionGone(t, id)
		if _, present := v5Reconnect(t, b, id, 0); present {
			t.Errorf("Session Present 1 after DISCONNECT set expiry 0")
		}
	})
	t.Run("60 to 1 ends it after 1 s", func(t *testing.T) {
		t.Parallel()
		id := v5ID("to1")
		c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
		c.v5Leave(b, id, expiry(1))
		left := time.Now()
		b.v5WaitSessionGone(t, id)
		if d := time.Since(left); d < 900*time.Millisecond {
			t.Errorf("session ended after %v, want 1 s", d)
		}
	})
	t.Run("1 to 0xFFFFFFFF keeps it", func(t *testing.T) {
		t.Parallel()
		id := v5ID("toinf")
		c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 1))
		c.v5Leave(b, id, expiry(0xFFFFFFFF))
		time.Sleep(1500 * time.Millisecond)
		if _, present := v5Reconnect(t, b, id, 0); !present {
			t.Errorf("Session Present 0: the DISCONNECT's expiry 0xFFFFFFFF was not applied")
		}
	})
	t.Run("0 to 0 is a normal DISCONNECT", func(t *testing.T) {
		t.Parallel()
		id := v5ID("0to0")
		c, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 0))
		c.v5Leave(b, id, expiry(0))
	})
	t.Run("0 to non-zero is a Protocol Error", func(t *testing.T) {
		t.Parallel()
		id := v5ID("0to60")
		watch := v5Client(t, b, v5ID("watch"))
		watch.v5Sub(0, packet.Subscription{Filter: "will/" + id, QoS: 1})
		p := v5Connect(id)
		p.CleanStart = false // Session Expiry Interval absent: 0
		p.WillFlag = true
		p.Will = packet.Will{Topic: "will/" + id, Payload: []byte("bad disconnect"), QoS: 1}
		c, _ := v5ConnectOK(t, b.Addr, p)
		c.send(&packet.Disconnect{Properties: *expiry(60)})
		c.v5ExpectDisconnect(packet.ProtocolError)
		b.v5WaitSessionGone(t, id)
		// Not a valid DISCONNECT: the will is not discarded [MQTT-3.14.4-3].
		m := watch.expectPublish("will/"+id, "bad disconnect")
		watch.ack(m)
		if _, present := v5Reconnect(t, b, id, 0); present {
			t.Errorf("Session Present 1: the invalid DISCONNECT extended the session")
		}
	})
}

// [MQTT-3.2.2-16] [MQTT-3.1.3-6] [MQTT-3.1.3-7]: a 5.0 client with an
// empty ClientID gets one in CONNACK's Assigned Client Identifier, unique
// among sessions, and the session is kept under it. A client that sent a
// ClientID gets none back.
func TestV5AssignedClientIdentifier_MQTT_3_2_2_16(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())

	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		c, ack := v5ConnectOK(t, b.Addr, v5Persistent("", false, 60)) // 5.0 allows Clean Start 0 here
		id := ack.Properties.AssignedClientID
		if !ack.Properties.Has(packet.PropAssignedClientID) || id == "" {
			t.Fatalf("CONNACK for an empty ClientID has no Assigned Client Identifier [MQTT-3.2.2-16]")
		}
		if seen[id] {
			t.Fatalf("Assigned Client Identifier %q given twice [MQTT-3.2.2-16]", id)
		}
		seen[id] = true
		if ack.SessionPresent {
			t.Errorf("Session Present 1 for a brand-new assigned identifier")
		}
		if _, online := b.SessionState(id); !online {
			t.Fatalf("no live session under the assigned identifier %q [MQTT-3.1.3-7]", id)
		}
		c.v5Sub(0, packet.Subscription{Filter: "assigned/" + id, QoS: 1})
		c.v5Leave(b, id, nil)
		// The identifier names the kept session [MQTT-3.1.3-2].
		c, present := v5Reconnect(t, b, id, 60)
		if !present {
			t.Errorf("reconnecting as %q: Session Present 0", id)
		}
		c.v5Leave(b, id, nil)
	}

	_, ack := v5ConnectOK(t, b.Addr, v5Connect("named"))
	if ack.Properties.Has(packet.PropAssignedClientID) {
		t.Errorf("CONNACK assigns %q to a client that sent its ClientID", ack.Properties.AssignedClientID)
	}

	// paho takes the assigned identifier as its own.
	pc, pack := v5Paho(t, b.Addr, v5PahoConnect(""), nil)
	if pack.Properties == nil || pack.Properties.AssignedClientID == "" || pc.ClientID() != pack.Properties.AssignedClientID {
		t.Errorf("paho: no Assigned Client Identifier in CONNACK (client id %q)", pc.ClientID())
	}
}

// [MQTT-3.1.2-21] [MQTT-3.2.2-21] [MQTT-3.2.2-22]: when Options.MaxKeepAlive
// caps the client's Keep Alive (or the client asked for none), CONNACK
// carries Server Keep Alive, and the broker enforces that value; a Keep
// Alive within the cap is returned as is (no property) and enforced.
func TestV5ServerKeepAlive_MQTT_3_1_2_21(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxKeepAlive = 1
	b := runBroker(t, opts)
	for _, tc := range []struct {
		asked uint16
		cap   bool
	}{{60, true}, {0, true}, {1, false}} {
		t.Run(fmt.Sprint("keep alive ", tc.asked), func(t *testing.T) {
			t.Parallel()
			p := v5Connect(v5ID("ka"))
			p.KeepAlive = tc.asked
			c, ack := v5ConnectOK(t, b.Addr, p)
			has := ack.Properties.Has(packet.PropServerKeepAlive)
			switch {
			case tc.cap && (!has || ack.Properties.ServerKeepAlive != 1):
				t.Errorf("over the cap 1: Server Keep Alive present %v value %d, want 1", has, ack.Properties.ServerKeepAlive)
			case !tc.cap && has:
				t.Errorf("within the cap: Server Keep Alive %d sent", ack.Properties.ServerKeepAlive)
			}
			// The broker enforces 1.5 x the Server Keep Alive: silence
			// ends the connection with 0x8D after 1.5 s.
			start := time.Now()
			c.v5ExpectDisconnect(packet.KeepAliveTimeout)
			if d := time.Since(start); d < time.Second {
				t.Errorf("closed after %v, want about 1.5 s", d)
			}
		})
	}
	t.Run("paho", func(t *testing.T) {
		t.Parallel()
		_, ack := v5Paho(t, b.Addr, v5PahoConnect("paho-ka"), nil)
		if ack.Properties == nil || ack.Properties.ServerKeepAlive == nil || *ack.Properties.ServerKeepAlive != 1 {
			t.Errorf("paho: CONNACK Server Keep Alive %v, want 1", ack.Properties)
		}
	})
}

// [MQTT-3.2.2-3] [MQTT-3.1.2-5] [MQTT-4.4.0-1] with autopaho: after its
// network connection is lost, autopaho reconnects with Clean Start 0; the
// broker reports Session Present 1 and delivers the QoS 1 message published
// while the client was away, on the subscription made before.
func TestV5AutopahoSessionResume_MQTT_3_2_2_3(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	u, err := url.Parse("mqtt://" + b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		conns    []net.Conn
		attempts atomic.Int32
	)
	gate := make(chan struct{}) // closed to let autopaho reconnect
	ups := make(chan *paho.Connack, 4)
	msgs := make(chan *paho.Publish, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         60,
		ConnectTimeout:                waitFor,
		ReconnectBackoff:              func(int) time.Duration { return 20 * time.Millisecond },
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			if attempts.Add(1) > 1 {
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", u.Host)
			if err == nil {
				mu.Lock()
				conns = append(conns, nc)
				mu.Unlock()
			}
			return nc, err
		},
		OnConnectionUp: func(_ *autopaho.ConnectionManager, ack *paho.Connack) { ups <- ack },
		OnConnectError: func(error) {},
		ClientConfig: paho.ClientConfig{
			ClientID:      "auto",
			OnClientError: func(error) {},
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
				select {
				case msgs <- r.Packet:
				default:
				}
				return true, nil
			}},
		},
	})
	if err != nil {
		t.Fatalf("autopaho: %v", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), waitFor)
		defer dcancel()
		cm.Disconnect(dctx)
	}()
	up := func() *paho.Connack {
		t.Helper()
		select {
		case ack := <-ups:
			return ack
		case <-time.After(waitFor):
			t.Fatalf("autopaho did not connect")
			return nil
		}
	}
	if ack := up(); ack.SessionPresent {
		t.Errorf("first connection (Clean Start 1): Session Present 1 [MQTT-3.2.2-2]")
	}
	sctx, scancel := context.WithTimeout(ctx, waitFor)
	defer scancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "auto/#", QoS: 1}}}); err != nil {
		t.Fatalf("autopaho subscribe: %v", err)
	}

	mu.Lock()
	conns[0].Close() // the network drops
	mu.Unlock()
	b.waitOffline(t, "auto")
	pub := v5Client(t, b, "pub")
	if rc := pub.v5Pub("auto/x", "while away", 1, false); rc != packet.Success {
		t.Fatalf("PUBACK %#x: the offline session lost its subscription", byte(rc))
	}
	close(gate)
	if ack := up(); !ack.SessionPresent {
		t.Errorf("reconnection with Clean Start 0 to a 60 s session: Session Present 0 [MQTT-3.2.2-3]")
	}
	select {
	case m := <-msgs:
		if m.Topic != "auto/x" || string(m.Payload) != "while away" || m.QoS != 1 {
			t.Errorf("autopaho got %q %q QoS %d", m.Topic, m.Payload, m.QoS)
		}
	case <-time.After(waitFor):
		t.Fatalf("the message queued while offline was not delivered")
	}
}
