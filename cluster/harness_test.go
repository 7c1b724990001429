package cluster_test

// The cluster tests' harness: thin wrappers, under the names these tests
// call, around internal/gannettest and its clustertest.

import (
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/internal/gannettest/clustertest"
)

const (
	waitFor = 5 * time.Second     // bounds a wait for something that must happen
	formFor = clustertest.FormFor // bounds the forming of JetStream
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

func testLogger() *slog.Logger { return gannettest.Logger() }

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) { return clustertest.FreePorts(n) }

// startNodes starts n nodes on loopback, each with routes to all, and
// waits until JetStream has formed on every node.
func startNodes(tb testing.TB, n int, dir string) ([]*node, error) {
	ns, err := clustertest.Start(n, dir, nil)
	if err != nil {
		return nil, err
	}
	nodes := make([]*node, len(ns))
	for i, nd := range ns {
		nodes[i] = &node{name: nd.Name, cl: nd.Cluster, srv: nd.Server, addr: nd.Addr, done: nd.Done}
	}
	return nodes, nil
}

// closeNodes closes nodes and waits for their Serve to return.
func closeNodes(nodes []*node) {
	for _, nd := range nodes {
		(&clustertest.Node{Name: nd.name, Cluster: nd.cl, Server: nd.srv, Addr: nd.addr, Done: nd.done}).Close()
	}
}

// discardNodes ends nodes at once (their NATS servers first, as a kill
// would), then closes their brokers: the cleanup of a test whose cluster
// was cut or lost nodes, which a graceful close would stall on for
// seconds (handing over leaderships no peer can take).
func discardNodes(nodes []*node) {
	for _, nd := range nodes {
		nd.cl.Discard()
	}
	closeNodes(nodes)
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
	return gannettest.Paho(t, addr, id, 4, func(o *mqtt.ClientOptions) { o.SetCleanSession(clean) })
}

func wait(t testing.TB, what string, tok mqtt.Token) { t.Helper(); gannettest.Wait(t, what, tok) }

// subscribe subscribes a paho client and returns its messages.
func subscribe(t testing.TB, c mqtt.Client, filter string, qos byte) <-chan mqtt.Message {
	t.Helper()
	return gannettest.Messages(t, c, filter, qos, 10000)
}

func next(t testing.TB, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	return gannettest.Next(t, ch)
}

func none(t testing.TB, ch <-chan mqtt.Message) { t.Helper(); gannettest.None(t, ch, quiet) }

// converge publishes probes on topicName from pub until sub's channel
// gets one, then drains the probes: NATS spreads a new subscription's
// interest to the other nodes asynchronously, as MQTT cannot tell.
// probeUntil calls send every 100 ms until something arrives on got, for
// waitFor at most: a subscription has reached the publisher's node.
func probeUntil[T any](t testing.TB, send func(), got <-chan T) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); ; {
		send()
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the subscription never reached the publisher's node")
			}
		}
	}
}

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
	t.Helper()
	c, msgs, _ := paho5d(t, addr, cp)
	return c, msgs
}

// paho5d is paho5 that also returns the DISCONNECT the server sends.
func paho5d(t testing.TB, addr string, cp *paho.Connect) (*paho.Client, chan *paho.Publish, chan *paho.Disconnect) {
	t.Helper()
	pc, _ := gannettest.Paho5(t, addr, cp, nil)
	return pc.Client, pc.Msgs, pc.Disconnects
}
