package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// Every wait in these tests has one of these deadlines, so no test hangs.
const (
	// waitFor bounds a wait for something that must happen.
	waitFor = 3 * time.Second
	// quiet is how long a test listens to be fairly sure something does
	// not happen, where no barrier can prove it.
	quiet = 200 * time.Millisecond
)

func testLogger() *slog.Logger { return gannettest.Logger() }

// testCtx returns a context that ends after waitFor.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// gannet is an in-process Gannet broker that can be restarted on its
// address.
type gannet struct {
	t    testing.TB
	opts broker.Options
	Addr string
	mu   sync.Mutex
	srv  *broker.Server
	wrap func(net.Listener) net.Listener
}

// runGannet starts a broker with opts (DefaultOptions when nil) on
// 127.0.0.1:0 and closes it when the test ends.
func runGannet(t testing.TB, opts *broker.Options) *gannet {
	t.Helper()
	o := broker.DefaultOptions()
	if opts != nil {
		o = *opts
	}
	o.Logger = testLogger()
	g := &gannet{t: t, opts: o}
	g.start("127.0.0.1:0")
	t.Cleanup(g.stop)
	return g
}

// start serves on addr.
func (g *gannet) start(addr string) {
	g.t.Helper()
	srv, err := broker.New(g.opts)
	if err != nil {
		g.t.Fatalf("broker.New: %v", err)
	}
	var l net.Listener
	deadline := time.Now().Add(waitFor)
	for {
		l, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.Addr = l.Addr().String()
	if g.wrap != nil {
		l = g.wrap(l)
	}
	go srv.Serve(l)
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
}

// stop closes the broker and its connections.
func (g *gannet) stop() {
	g.mu.Lock()
	srv := g.srv
	g.srv = nil
	g.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart stops the broker and starts a fresh one, without state, on the
// same address.
func (g *gannet) restart() {
	g.t.Helper()
	g.stop()
	g.start(g.Addr)
}

// url returns the broker's mqtt:// URL.
func (g *gannet) url() string { return "mqtt://" + g.Addr }

// target is a broker under test: Gannet in process, or mosquitto.
type target struct {
	name   string
	url    string
	gannet bool // the in-process broker

}

// forEachBroker runs f against the in-process Gannet broker and against
// Debian's mosquitto, each in its own subtest.
func forEachBroker(t *testing.T, f func(t *testing.T, b target)) {
	t.Helper()
	t.Run("gannet", func(t *testing.T) {
		t.Parallel()
		g := runGannet(t, nil)
		f(t, target{name: "gannet", url: g.url(), gannet: true})
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		addr := runMosquitto(t)
		f(t, target{name: "mosquitto", url: "mqtt://" + addr})
	})
}

// runMosquitto starts mosquitto on a free 127.0.0.1 port with an anonymous
// listener, and kills it when the test ends. Extra lines are appended to
// its configuration file. Without mosquitto the test is skipped, or fails
// when CI is set.
func runMosquitto(t testing.TB, extra ...string) string {
	t.Helper()
	return gannettest.RunMosquitto(t, extra...)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int { t.Helper(); return gannettest.FreePort(t) }

// options returns client options for server at version with a test logger.
func options(server string, version byte) client.Options {
	o := client.DefaultOptions()
	o.Server = server
	o.Version = version
	o.Logger = testLogger()
	o.ConnectTimeout = waitFor
	return o
}

// dial connects a client; it is closed when the test ends.
func dial(t testing.TB, o client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(testCtx(t), o)
	if err != nil {
		t.Fatalf("dial %s (version %d): %v", o.Server, o.Version, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inbox collects messages from a handler.
type inbox struct {
	ch chan *client.Message
}

func newInbox() *inbox { return &inbox{ch: make(chan *client.Message, 1024)} }

func (in *inbox) handler(m *client.Message) { in.ch <- m }

// next returns the next message, failing the test after waitFor.
func (in *inbox) next(t testing.TB) *client.Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message within %v", waitFor)
		return nil
	}
}

// expect reads the next message and checks its topic and payload.
func (in *inbox) expect(t testing.TB, topicName, payload string) *client.Message {
	t.Helper()
	m := in.next(t)
	if m.Topic != topicName || string(m.Payload) != payload {
		t.Fatalf("got message %q %q, want %q %q", m.Topic, m.Payload, topicName, payload)
	}
	return m
}

// none checks that no message arrives for a short while.
func (in *inbox) none(t testing.TB) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected message %q %q", m.Topic, m.Payload)
	case <-time.After(quiet):
	}
}

// subscribe subscribes c to filter at qos with in's handler.
func subscribe(t testing.TB, c *client.Client, in *inbox, filter string, qos byte) {
	t.Helper()
	codes, err := c.Subscribe(testCtx(t), client.Subscription{Filter: filter, QoS: qos, Handler: in.handler})
	if err != nil {
		t.Fatalf("subscribe %q: %v", filter, err)
	}
	if len(codes) != 1 || codes[0] != packet.ReasonCode(qos) {
		t.Fatalf("subscribe %q: codes %v, want granted QoS %d", filter, codes, qos)
	}
}

// publish publishes and fails the test on error.
func publish(t testing.TB, c *client.Client, topicName, payload string, o client.PublishOptions) {
	t.Helper()
	if err := c.Publish(testCtx(t), topicName, []byte(payload), o); err != nil {
		t.Fatalf("publish %q: %v", topicName, err)
	}
}

// isConnRefused reports whether err is a refused TCP connection.
func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// topicFor returns a topic unique to the test, so tests sharing a broker
// do not see each other's messages.
func topicFor(t testing.TB, suffix string) string {
	return "test/" + strings.ReplaceAll(t.Name(), "/", "_") + "/" + suffix
}
