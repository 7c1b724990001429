package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/packet"
)

// nodeView returns the node named name in nd's view of the cluster.
func nodeView(nd *node, name string) (broker.ClusterNode, bool) {
	for _, n := range nd.cl.Nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return broker.ClusterNode{}, false
}

// Every node hears the others' heartbeats: their names, MQTT addresses
// and clients; and Status reports each stream and bucket of the shared
// state with its leader and its three replicas.
func TestClusterStatus(t *testing.T) {
	nodes := three(t)
	_, _ = paho5(t, nodes[1].addr, &paho.Connect{ClientID: "status-on-n2", CleanStart: true, KeepAlive: 30})
	for _, nd := range nodes {
		for _, other := range nodes {
			eventually(t, nd.name+" sees "+other.name+" alive at "+other.addr, func() bool {
				n, ok := nodeView(nd, other.name)
				return ok && n.Alive && n.Address == other.addr && n.Self == (nd == other)
			})
		}
	}
	eventually(t, "n1 sees n2's client", func() bool {
		n, _ := nodeView(nodes[0], "n2")
		return n.Clients >= 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := nodes[0].cl.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Cluster != "test" || st.Node != "n1" || !st.Ready || st.MetaLeader == "" || len(st.Nodes) != 3 {
		t.Errorf("status: cluster %q node %q ready %v meta leader %q, %d nodes", st.Cluster, st.Node, st.Ready, st.MetaLeader, len(st.Nodes))
	}
	var names []string
	for _, s := range st.Streams {
		names = append(names, s.Name)
		if s.Replicas != 3 || s.Leader == "" || len(s.Peers) != 3 {
			t.Errorf("stream %s: %d replicas configured, leader %q, peers %+v", s.Name, s.Replicas, s.Leader, s.Peers)
		}
	}
	for _, want := range []string{"GANNET_test_MESSAGES", "GANNET_test_RETAINED", "KV_gannet_test_nodes", "KV_gannet_test_owners", "KV_gannet_test_wills"} {
		if !slices.Contains(names, want) {
			t.Errorf("streams %v: %s missing", names, want)
		}
	}
}

// restartable is a node that can be stopped and started again on the same
// route port and data directory.
type restartable struct {
	name, listen, dir string
	routes            []string
}

func (r restartable) start(t *testing.T) *node {
	t.Helper()
	o := cluster.DefaultOptions()
	o.Name, o.Node, o.Listen, o.Routes, o.Replicas, o.DataDir = "roll", r.name, r.listen, r.routes, 3, r.dir
	o.Logger = testLogger()
	cl, err := cluster.New(o)
	if err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	bo := broker.DefaultOptions()
	bo.Logger, bo.SysInterval, bo.Cluster = o.Logger, 0, cl
	srv, err := broker.New(bo)
	if err != nil {
		cl.Close()
		t.Fatalf("start %s: %v", r.name, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	nd := &node{name: r.name, cl: cl, srv: srv, addr: l.Addr().String(), done: make(chan error, 1)}
	go func() { nd.done <- srv.Serve(l) }()
	return nd
}

// stop closes a node gracefully, as SIGTERM does, and waits for it.
func stop(t *testing.T, nd *node) {
	t.Helper()
	if err := nd.srv.Close(); err != nil {
		t.Errorf("close %s: %v", nd.name, err)
	}
	select {
	case err := <-nd.done:
		if !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("%s: Serve returned %v", nd.name, err)
		}
	case <-time.After(waitFor):
		t.Errorf("%s: Serve did not return after Close", nd.name)
	}
}

// A rolling restart: a node closed gracefully (SIGTERM) tells its 5.0
// clients to use another server, naming a live node's MQTT address as
// Server Reference (5.0 section 4.11), closes its 3.1.1 clients, and
// releases their client identifiers first, so that a client connects to
// the node named at once, without a takeover of the leaving node. The
// other nodes see it leave; started again on its data directory, it
// rejoins and routes again.
func TestRollingRestart(t *testing.T) {
	dir := t.TempDir()
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://"+p)
	}
	specs := make([]restartable, 3)
	nodes := make([]*node, 3)
	for i := range specs {
		specs[i] = restartable{name: fmt.Sprintf("r%d", i+1), listen: ports[i], dir: fmt.Sprintf("%s/r%d", dir, i+1), routes: routes}
		nodes[i] = specs[i].start(t)
	}
	t.Cleanup(func() { discardNodes(nodes) })
	for _, nd := range nodes {
		select {
		case <-nd.cl.Ready():
		case <-time.After(formFor):
			t.Fatalf("JetStream did not form on %s", nd.name)
		}
	}
	a := nodes[0]
	others := []string{nodes[1].addr, nodes[2].addr}
	eventually(t, "r1 hears r2 and r3", func() bool {
		n2, _ := nodeView(a, "r2")
		n3, _ := nodeView(a, "r3")
		return n2.Alive && n2.Address == nodes[1].addr && n3.Alive && n3.Address == nodes[2].addr
	})

	const id5, id3 = "roll-v5", "roll-v311"
	_, _, disc := paho5d(t, a.addr, &paho.Connect{ClientID: id5, CleanStart: true, KeepAlive: 30})
	lost := make(chan error, 1)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + a.addr).SetClientID(id3).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(waitFor).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	c3 := mqtt.NewClient(o)
	wait(t, "3.1.1 connect", c3.Connect())
	defer c3.Disconnect(0)
	if owner, err := a.cl.Owner(id5); err != nil || owner != a.cl.Origin() {
		t.Fatalf("before the restart %s is owned by %q (%v), want r1 (%s)", id5, owner, err, a.cl.Origin())
	}

	stop(t, a)
	var d *paho.Disconnect
	select {
	case d = <-disc:
	case <-time.After(waitFor):
		t.Fatal("the 5.0 client got no DISCONNECT")
	}
	ref := ""
	if d.Properties != nil {
		ref = d.Properties.ServerReference
	}
	if d.ReasonCode != byte(packet.UseAnotherServer) || !slices.Contains(others, ref) {
		t.Fatalf("DISCONNECT %#x with Server Reference %q, want 0x9C naming one of %v", d.ReasonCode, ref, others)
	}
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Fatal("the 3.1.1 client's connection stayed open")
	}
	// Released before the clients were told to go: the identifier has
	// no owner, so the node named need not ask r1 to take it over.
	var owner string
	eventually(t, "an answer from the owners bucket", func() bool {
		owner, err = nodes[1].cl.Owner(id5)
		return err == nil || errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after r1 left, %s is owned by %q (%v), want released", id5, owner, err)
	}
	paho5(t, ref, &paho.Connect{ClientID: id5, CleanStart: true, KeepAlive: 30})
	eventually(t, "r2 sees r1 gone", func() bool { n, ok := nodeView(nodes[1], "r1"); return ok && !n.Alive })

	// r1 restarts on its data directory and rejoins.
	nodes[0] = specs[0].start(t)
	select {
	case <-nodes[0].cl.Ready():
	case <-time.After(formFor):
		t.Fatal("JetStream did not form on the restarted r1")
	}
	eventually(t, "r2 sees r1 back", func() bool {
		n, ok := nodeView(nodes[1], "r1")
		return ok && n.Alive && n.Address == nodes[0].addr
	})
	sub := pahoClient(t, nodes[0].addr, "roll-sub", true)
	ch := subscribe(t, sub, "roll/#", 1)
	pub := pahoClient(t, nodes[1].addr, "roll-pub", true)
	converge(t, pub, "roll/x", ch)
	wait(t, "publish", pub.Publish("roll/x", 1, false, "back"))
	if m := next(t, ch); string(m.Payload()) != "back" || !strings.HasPrefix(m.Topic(), "roll/") {
		t.Errorf("restarted r1 got %q on %q", m.Payload(), m.Topic())
	}
}
