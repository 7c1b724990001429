package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// gate turns away connections whose CONNECT names a blocked client
// identifier, so that a test decides which client reconnects first.
type gate struct {
	mu      sync.Mutex
	blocked map[string]bool
}

func (g *gate) block(id string, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.blocked == nil {
		g.blocked = make(map[string]bool)
	}
	g.blocked[id] = on
}

func (g *gate) isBlocked(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[id]
}

func (g *gate) wrap(l net.Listener) net.Listener {
	gl := &gateListener{Listener: l, g: g, out: make(chan net.Conn), done: make(chan struct{})}
	go gl.loop()
	return gl
}

type gateListener struct {
	net.Listener
	g         *gate
	out       chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *gateListener) loop() {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			l.Close()
			return
		}
		go l.peek(nc)
	}
}

// peek reads the CONNECT and hands the connection on, or closes it.
func (l *gateListener) peek(nc net.Conn) {
	nc.SetReadDeadline(time.Now().Add(waitFor))
	var buf []byte
	var dec packet.Decoder
	for {
		var tmp [512]byte
		n, err := nc.Read(tmp[:])
		buf = append(buf, tmp[:n]...)
		p, _, derr := dec.Decode(buf)
		if err != nil || derr != nil {
			nc.Close()
			return
		}
		if p == nil {
			continue
		}
		if c, ok := p.(*packet.Connect); !ok || l.g.isBlocked(c.ClientID) {
			nc.Close()
			return
		}
		nc.SetReadDeadline(time.Time{})
		select {
		case l.out <- &prefixConn{Conn: nc, prefix: buf}:
		case <-l.done:
			nc.Close()
		}
		return
	}
}

func (l *gateListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.out:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *gateListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// prefixConn returns prefix before the rest of its connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// reconnecting returns options that reconnect quickly, and channels fed by
// OnConnect and OnConnectionLost.
func reconnecting(server string, version byte, id string) (client.Options, chan *packet.Connack, chan error) {
	o := options(server, version)
	o.ClientID = id
	o.AutoReconnect = true
	o.ReconnectMin = 10 * time.Millisecond
	o.ReconnectMax = 50 * time.Millisecond
	connected := make(chan *packet.Connack, 16)
	lost := make(chan error, 16)
	o.OnConnect = func(ack *packet.Connack) { connected <- ack }
	o.OnConnectionLost = func(err error) { lost <- err }
	return o, connected, lost
}

func waitChan[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// TestReconnectAfterRestart stops the broker, publishes a QoS 1 message
// while it is down, and starts a fresh broker on the same address: the
// subscriber, whose clean session the new broker does not have,
// resubscribes, and the publisher sends the queued message.
func TestReconnectAfterRestart(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			gt := &gate{}
			g := &gannet{t: t, wrap: gt.wrap}
			g.opts = runGannet(t, nil).opts // default options, quiet logger
			g.start("127.0.0.1:0")
			t.Cleanup(g.stop)

			so, subUp, _ := reconnecting(g.url(), v.v, "sub")
			sub := dial(t, so)
			waitChan(t, subUp, "subscriber connected")
			in := newInbox()
			name := topicFor(t, "x")
			subscribe(t, sub, in, name, 1)

			po, pubUp, pubLost := reconnecting(g.url(), v.v, "pub")
			pub := dial(t, po)
			waitChan(t, pubUp, "publisher connected")
			publish(t, pub, name, "before", client.PublishOptions{QoS: 1})
			in.expect(t, name, "before")

			g.stop()
			if err := waitChan(t, pubLost, "publisher to see the connection lost"); !errors.Is(err, client.ErrConnectionLost) {
				t.Errorf("lost error %v does not wrap ErrConnectionLost", err)
			}
			gt.block("pub", true)
			result := make(chan error, 1)
			go func() { result <- pub.Publish(testCtx(t), name, []byte("while down"), client.PublishOptions{QoS: 1}) }()
			g.start(g.Addr)

			if ack := waitChan(t, subUp, "subscriber reconnected"); ack.SessionPresent {
				t.Fatal("a fresh broker reported a session")
			}
			// The resubscription is made when a probe gets through.
			probe := dial(t, options(g.url(), v.v))
			deadline := time.Now().Add(waitFor)
		probing:
			for {
				publish(t, probe, name, "probe", client.PublishOptions{QoS: 1})
				select {
				case m := <-in.ch:
					if string(m.Payload) != "probe" {
						t.Fatalf("got %q before the publisher reconnected", m.Payload)
					}
					break probing
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("the subscriber did not resubscribe")
				}
			}

			gt.block("pub", false)
			waitChan(t, pubUp, "publisher reconnected")
			if err := waitChan(t, result, "publish queued while down"); err != nil {
				t.Fatalf("publish while down: %v", err)
			}
			for {
				m := in.next(t)
				if string(m.Payload) == "probe" {
					continue
				}
				if string(m.Payload) != "while down" || m.QoS != 1 {
					t.Fatalf("got %q at QoS %d", m.Payload, m.QoS)
				}
				break
			}
			publish(t, pub, name, "after", client.PublishOptions{QoS: 1})
			in.expect(t, name, "after")
		})
	}
}

// TestResendOnResumedSession checks on the wire that unacknowledged QoS 1
// and 2 messages are sent again on reconnect to a session the server kept:
// PUBLISH with DUP and the same identifier, PUBREL for a message past
// PUBREC, in the original order [MQTT-4.4.0-1].
func TestResendOnResumedSession(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t)
			o, _, lost := reconnecting(fs.url(), v.v, "dup")
			o.ResumeSession = true
			c := dialFake(t, fs, o, &packet.Connack{})
			fc := c.fc

			r1 := make(chan error, 1)
			go func() { r1 <- c.Publish(testCtx(t), "d/1", []byte("one"), client.PublishOptions{QoS: 1}) }()
			p1 := readType[*packet.Publish](fc)
			if p1.Dup || p1.QoS != 1 {
				t.Fatalf("first send: dup %v qos %d", p1.Dup, p1.QoS)
			}
			r2 := make(chan error, 1)
			go func() { r2 <- c.Publish(testCtx(t), "d/2", []byte("two"), client.PublishOptions{QoS: 2}) }()
			p2 := readType[*packet.Publish](fc)
			fc.send(&packet.Pubrec{PacketID: p2.PacketID})
			if rel := readType[*packet.Pubrel](fc); rel.PacketID != p2.PacketID {
				t.Fatalf("PUBREL %d, want %d", rel.PacketID, p2.PacketID)
			}
			fc.nc.Close()
			waitChan(t, lost, "connection lost")

			fc2, connect := fs.accept()
			if connect.CleanStart {
				t.Fatal("reconnect with clean start despite ResumeSession")
			}
			fc2.send(&packet.Connack{SessionPresent: true})
			again := readType[*packet.Publish](fc2)
			if !again.Dup || again.PacketID != p1.PacketID || string(again.Payload) != "one" {
				t.Fatalf("resent PUBLISH: dup %v id %d payload %q; want dup, id %d", again.Dup, again.PacketID, again.Payload, p1.PacketID)
			}
			if rel := readType[*packet.Pubrel](fc2); rel.PacketID != p2.PacketID {
				t.Fatalf("resent PUBREL %d, want %d", rel.PacketID, p2.PacketID)
			}
			fc2.send(&packet.Puback{PacketID: p1.PacketID}, &packet.Pubcomp{PacketID: p2.PacketID})
			if err := waitChan(t, r1, "QoS 1 publish"); err != nil {
				t.Fatal(err)
			}
			if err := waitChan(t, r2, "QoS 2 publish"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestResendOnNewSession: when the server has no session, the client
// resubscribes, completes a QoS 2 message past PUBREC, and sends an
// unacknowledged QoS 1 message again.
func TestResendOnNewSession(t *testing.T) {
	fs := newFakeServer(t)
	o, _, lost := reconnecting(fs.url(), packet.V5, "fresh")
	c := dialFake(t, fs, o, &packet.Connack{})
	fc := c.fc

	subDone := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "s/#", QoS: 1, NoLocal: true})
		subDone <- err
	}()
	s := readType[*packet.Subscribe](fc)
	fc.send(&packet.Suback{PacketID: s.PacketID, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS1}})
	if err := waitChan(t, subDone, "subscribe"); err != nil {
		t.Fatal(err)
	}
	r1 := make(chan error, 1)
	go func() { r1 <- c.Publish(testCtx(t), "d/1", []byte("one"), client.PublishOptions{QoS: 1}) }()
	readType[*packet.Publish](fc)
	r2 := make(chan error, 1)
	go func() { r2 <- c.Publish(testCtx(t), "d/2", []byte("two"), client.PublishOptions{QoS: 2}) }()
	p2 := readType[*packet.Publish](fc)
	fc.send(&packet.Pubrec{PacketID: p2.PacketID})
	readType[*packet.Pubrel](fc)
	fc.nc.Close()
	waitChan(t, lost, "connection lost")

	fc2, connect := fs.accept()
	if !connect.CleanStart {
		t.Fatal("reconnect without clean start")
	}
	fc2.send(&packet.Connack{})
	resub := readType[*packet.Subscribe](fc2)
	if len(resub.Subscriptions) != 1 || resub.Subscriptions[0] != (packet.Subscription{Filter: "s/#", QoS: 1, NoLocal: true}) {
		t.Fatalf("resubscription %+v", resub.Subscriptions)
	}
	fc2.send(&packet.Suback{PacketID: resub.PacketID, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS1}})
	again := readType[*packet.Publish](fc2)
	if string(again.Payload) != "one" || !again.Dup {
		t.Fatalf("resent %q dup %v", again.Payload, again.Dup)
	}
	if err := waitChan(t, r2, "QoS 2 publish"); err != nil {
		t.Fatalf("QoS 2 past PUBREC: %v", err)
	}
	fc2.send(&packet.Puback{PacketID: again.PacketID})
	if err := waitChan(t, r1, "QoS 1 publish"); err != nil {
		t.Fatal(err)
	}
	fc2.nothing() // no PUBREL for the completed QoS 2 message
}

// TestPublishWithdrawnWhenCanceled: a message still waiting for the
// connection when its context ends is not sent later.
func TestPublishWithdrawnWhenCanceled(t *testing.T) {
	fs := newFakeServer(t)
	o, up, lost := reconnecting(fs.url(), packet.V5, "withdraw")
	o.ReconnectMin, o.ReconnectMax = 300*time.Millisecond, 300*time.Millisecond
	c := dialFake(t, fs, o, &packet.Connack{})
	waitChan(t, up, "connected")
	c.fc.nc.Close()
	waitChan(t, lost, "connection lost")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Publish(ctx, "w", []byte("late"), client.PublishOptions{QoS: 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish: %v, want deadline exceeded", err)
	}
	fc2, _ := fs.accept()
	fc2.send(&packet.Connack{})
	waitChan(t, up, "reconnected")
	fc2.nothing()
}

// TestServerShutdown: without AutoReconnect a lost connection ends the
// client; a 5.0 client learns the reason from DISCONNECT.
func TestServerShutdown(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			g := runGannet(t, nil)
			lost := make(chan error, 1)
			o := options(g.url(), v.v)
			o.OnConnectionLost = func(err error) { lost <- err }
			c := dial(t, o)
			g.stop()
			err := waitChan(t, lost, "connection lost")
			waitChan(t, c.Done(), "client ended")
			if !errors.Is(c.Err(), client.ErrConnectionLost) || !errors.Is(err, client.ErrConnectionLost) {
				t.Fatalf("Err = %v, want ErrConnectionLost", c.Err())
			}
			if v.v >= packet.V5 {
				var de *client.DisconnectError
				if !errors.As(err, &de) || de.Code != packet.ServerShuttingDown {
					t.Fatalf("err = %v, want DISCONNECT server shutting down", err)
				}
			}
			if err := c.Publish(testCtx(t), "a", nil, client.PublishOptions{QoS: 1}); !errors.Is(err, client.ErrConnectionLost) {
				t.Fatalf("publish after the end: %v", err)
			}
		})
	}
}
