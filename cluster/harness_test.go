package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
)

const (
	waitFor = 5 * time.Second  // bounds a wait for something that must happen
	formFor = 60 * time.Second // bounds the forming of JetStream
	quiet   = 300 * time.Millisecond
)

// node is one node of a test cluster: a broker with its cluster membership.
type node struct {
	name string
	cl   *cluster.Cluster
	srv  *broker.Server
	addr string // MQTT listener
	done chan error
}

func testLogger() *slog.Logger {
	if os.Getenv("GANNET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// startNodes starts n nodes on loopback, each with routes to all (as an
// operator would configure them; NATS skips the route to itself). It
// waits until JetStream has formed on every node.
func startNodes(tb testing.TB, n int, dir string) ([]*node, error) {
	var nodes []*node
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://"+p)
	}
	for i := range n {
		o := cluster.DefaultOptions()
		o.Name = "test"
		o.Node = fmt.Sprintf("n%d", i+1)
		o.Listen = ports[i]
		o.Routes = routes
		o.Replicas = min(3, n)
		o.DataDir = fmt.Sprintf("%s/%s", dir, o.Node)
		o.Logger = testLogger()
		cl, err := cluster.New(o)
		if err != nil {
			closeNodes(nodes)
			return nil, err
		}
		bo := broker.DefaultOptions()
		bo.Logger = o.Logger
		bo.SysInterval = 0
		bo.Cluster = cl
		srv, err := broker.New(bo)
		if err != nil {
			cl.Close()
			closeNodes(nodes)
			return nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			srv.Close()
			closeNodes(nodes)
			return nil, err
		}
		nd := &node{name: o.Node, cl: cl, srv: srv, addr: l.Addr().String(), done: make(chan error, 1)}
		go func() { nd.done <- srv.Serve(l) }()
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		select {
		case <-nd.cl.Ready():
		case <-time.After(formFor):
			closeNodes(nodes)
			return nil, fmt.Errorf("JetStream did not form on %s within %v", nd.name, formFor)
		}
	}
	return nodes, nil
}

func closeNodes(nodes []*node) {
	for _, nd := range nodes {
		nd.srv.Close()
		select {
		case err := <-nd.done:
			if !errors.Is(err, broker.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "node %s: Serve returned %v\n", nd.name, err)
			}
		case <-time.After(waitFor):
		}
	}
}

// The three-node cluster shared by the tests of this package: JetStream
// takes seconds to form, so it is formed once. Tests use their own topics
// and client identifiers.
var (
	shared     []*node
	sharedErr  error
	sharedOnce sync.Once
	sharedDir  string
)

func three(t testing.TB) []*node {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "gannet-cluster-test")
		if sharedErr == nil {
			shared, sharedErr = startNodes(t, 3, sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("three-node cluster: %v", sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeNodes(shared)
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// pahoClient connects a paho (3.1.1) client to addr.
func pahoClient(t testing.TB, addr, id string, clean bool) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetCleanSession(clean).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(waitFor).SetWriteTimeout(waitFor).
		SetKeepAlive(30 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho %q: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func wait(t testing.TB, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// subscribe subscribes a paho client and returns its messages.
func subscribe(t testing.TB, c mqtt.Client, filter string, qos byte) <-chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, 10000)
	wait(t, "subscribe "+filter, c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) { ch <- m }))
	return ch
}

func next(t testing.TB, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message within %v", waitFor)
		return nil
	}
}

func none(t testing.TB, ch <-chan mqtt.Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %q on %q", m.Payload(), m.Topic())
	case <-time.After(quiet):
	}
}

// converge publishes probes on topicName from pub until sub's channel
// gets one, then drains the probes: NATS spreads a new subscription's
// interest to the other nodes asynchronously, as MQTT cannot tell.
func converge(t testing.TB, pub mqtt.Client, topicName string, ch <-chan mqtt.Message) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		wait(t, "probe", pub.Publish(topicName, 0, false, "probe"))
		select {
		case <-ch:
			for {
				select {
				case <-ch:
				case <-time.After(quiet):
					return
				}
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription to %q never reached the publisher's node", topicName)
		}
	}
}

// paho5 connects a paho.golang (5.0) client to addr; its messages arrive
// on the returned channel.
func paho5(t testing.TB, addr string, cp *paho.Connect) (*paho.Client, chan *paho.Publish) {
	c, msgs, _ := paho5d(t, addr, cp)
	return c, msgs
}

// paho5d is paho5 that also returns the DISCONNECT the server sends.
func paho5d(t testing.TB, addr string, cp *paho.Connect) (*paho.Client, chan *paho.Publish, chan *paho.Disconnect) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *paho.Publish, 10000)
	disc := make(chan *paho.Disconnect, 1)
	c := paho.NewClient(paho.ClientConfig{
		OnServerDisconnect: func(d *paho.Disconnect) { disc <- d },
		Conn:               nc,
		PacketTimeout:      waitFor,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(r paho.PublishReceived) (bool, error) { msgs <- r.Packet; return true, nil },
		},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c.Connect(ctx, cp); err != nil {
		nc.Close()
		t.Fatalf("paho5 connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	return c, msgs, disc
}
