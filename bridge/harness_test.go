package bridge_test

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

const (
	waitFor = 10 * time.Second       // bound of a wait for what must happen
	quiet   = 300 * time.Millisecond // how long to listen for what must not happen
)

func testLogger() *slog.Logger { return gannettest.Logger() }

// gannet is an in-process broker on a loopback port, which can be
// stopped and started again on the same port (and data directory).
type gannet struct {
	t    testing.TB
	Addr string
	dir  string // pebble data directory; "" for memory
	Srv  *broker.Server
	st   store.Store
	mgr  *bridge.Manager
	mod  func(*broker.Options)
	done chan error
	l    net.Listener
}

func startGannet(t testing.TB, durable bool) *gannet {
	t.Helper()
	return startGannetWith(t, durable, nil)
}

// startGannetWith is startGannet with options changed by mod.
func startGannetWith(t testing.TB, durable bool, mod func(*broker.Options)) *gannet {
	t.Helper()
	g := &gannet{t: t, Addr: "127.0.0.1:0", mod: mod}
	if durable {
		g.dir = t.TempDir()
	}
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *gannet) start() {
	g.t.Helper()
	o := gannettest.Options()
	o.MaxQueued = 100_000
	if g.mod != nil {
		g.mod(&o)
	}
	if g.dir != "" {
		po := pebble.DefaultOptions()
		po.Logger = o.Logger
		st, err := pebble.Open(g.dir, po)
		if err != nil {
			g.t.Fatalf("pebble.Open: %v", err)
		}
		g.st, o.Store = st, st
	}
	srv, err := broker.New(o)
	if err != nil {
		g.t.Fatalf("broker.New: %v", err)
	}
	var l net.Listener
	for i := 0; ; i++ { // the port of a broker just stopped may take a moment
		l, err = net.Listen("tcp", g.Addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatalf("listen on %s: %v", g.Addr, err)
	}
	g.Addr = l.Addr().String()
	g.Srv, g.l = srv, l
	g.done = make(chan error, 1)
	go func() { g.done <- srv.Serve(l) }()
}

// bridges runs cfgs on this broker.
func (g *gannet) bridges(cfgs ...bridge.Config) *bridge.Manager {
	g.t.Helper()
	if g.mgr == nil {
		g.mgr = bridge.NewManager(g.Srv, testLogger())
	}
	if err := g.mgr.Apply(cfgs); err != nil {
		g.t.Fatalf("bridges: %v", err)
	}
	return g.mgr
}

func (g *gannet) stop() {
	if g.Srv == nil {
		return
	}
	if g.mgr != nil {
		g.mgr.Close()
		g.mgr = nil
	}
	g.Srv.Close()
	g.l.Close() // Serve may not have taken it yet when Close ran
	select {
	case err := <-g.done:
		if !errors.Is(err, broker.ErrServerClosed) {
			g.t.Errorf("Serve returned %v", err)
		}
	case <-time.After(waitFor):
		g.t.Errorf("Serve did not return after Close")
	}
	if g.st != nil {
		g.st.Close()
		g.st = nil
	}
	g.Srv = nil
}

// testBridge is a bridge to addr with fast timings for tests.
func testBridge(name string, version byte, rules []bridge.Rule, addrs ...string) bridge.Config {
	c := bridge.DefaultConfig(name)
	c.Addresses = addrs
	c.Version = version
	c.RemoteClientID = "bridge-" + name
	c.RestartMin, c.RestartMax = 50*time.Millisecond, 200*time.Millisecond
	c.PrimaryRetry = 200 * time.Millisecond
	c.KeepAlive = 10 * time.Second
	c.Rules = rules
	return c
}

// msg is a message received by a test subscriber.
type msg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

// subscriber is an independent 3.1.1 client (paho) collecting messages.
type subscriber struct {
	t  testing.TB
	c  mqtt.Client
	ch chan msg
}

func connectPaho(t testing.TB, addr, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	return gannettest.Paho(t, addr, id, 4, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(clean).SetOrderMatters(true).SetWriteTimeout(0) // no write deadline, as before: the throughput tests write much
		if onMsg != nil {
			o.SetDefaultPublishHandler(onMsg)
		}
	})
}

func nextID(p string) string { return gannettest.ID(p) }

func subscribe(t testing.TB, addr, filter string, qos byte) *subscriber {
	t.Helper()
	s := &subscriber{t: t, ch: make(chan msg, 100_000)}
	s.c = connectPaho(t, addr, nextID("sub"), true, nil)
	tok := s.c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		s.ch <- msg{m.Topic(), string(m.Payload()), m.Qos(), m.Retained()}
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %q on %s: %v", filter, addr, tok.Error())
	}
	return s
}

// next returns the next message, failing the test after waitFor.
func (s *subscriber) next() msg {
	s.t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-time.After(waitFor):
		s.t.Fatalf("no message within %v", waitFor)
		return msg{}
	}
}

// none checks that no message arrives for a while.
func (s *subscriber) none() {
	s.t.Helper()
	select {
	case m := <-s.ch:
		s.t.Fatalf("unexpected message %+v", m)
	case <-time.After(quiet):
	}
}

func publish(t testing.TB, addr, topic, payload string, qos byte, retain bool) {
	t.Helper()
	c := connectPaho(t, addr, nextID("pub"), true, nil)
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %q on %s: %v", topic, addr, tok.Error())
	}
	c.Disconnect(100)
}

// waitState waits until the manager reports the bridge in state s.
func waitState(t testing.TB, m *bridge.Manager, name string, s bridge.State) bridge.Info {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		for _, in := range m.Bridges() {
			if in.Name == name && in.State == s {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge %q not %s within %v: %+v", name, s, waitFor, m.Bridges())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bridgeInfo(m *bridge.Manager, name string) bridge.Info {
	for _, in := range m.Bridges() {
		if in.Name == name {
			return in
		}
	}
	return bridge.Info{}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	gannettest.EventuallyWithin(t, waitFor, what, cond)
}
