package broker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// opsCluster is fakeCluster that also reports on the cluster and helps
// its node leave (broker.ClusterReporter, broker.ClusterDrainer).
type opsCluster struct {
	*fakeCluster
	refs []string // the live nodes ServerReference names, in turn

	mu    sync.Mutex
	calls []string // Drain, Release, in order
	next  int
	// connectedAtRelease is how many clients were connected when
	// Release was called.
	connectedAtRelease int
}

func (o *opsCluster) NodeName() string { return "n1" }

func (o *opsCluster) Nodes() []broker.ClusterNode {
	return []broker.ClusterNode{
		{Name: "n1", Address: "n1:1883", Alive: true, Self: true, Clients: o.in.(broker.LocalNode).Connections()},
		{Name: "n2", Address: "n2:1883", Alive: true, Clients: 7},
		{Name: "n3", Address: "n3:1883"},
	}
}

func (o *opsCluster) Status(context.Context) (*broker.ClusterStatus, error) {
	return &broker.ClusterStatus{Cluster: "c", Node: "n1", Ready: true, Nodes: o.Nodes()}, nil
}

func (o *opsCluster) Drain(context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "Drain")
}

func (o *opsCluster) Release(context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "Release")
	o.connectedAtRelease = o.in.(broker.LocalNode).Connections()
}

func (o *opsCluster) ServerReference() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.refs) == 0 {
		return ""
	}
	r := o.refs[o.next%len(o.refs)]
	o.next++
	return r
}

func runOpsCluster(t *testing.T, mod func(*broker.Options)) (*testBroker, *opsCluster) {
	t.Helper()
	oc := &opsCluster{fakeCluster: &fakeCluster{}, refs: []string{"n2:1883", "n3:1883"}}
	o := testOptions()
	o.Cluster = oc
	if mod != nil {
		mod(&o)
	}
	return runBroker(t, o), oc
}

// Closing a clustered node moves its clients: the cluster hears that the
// node leaves and releases the client identifiers while the clients are
// still connected; then each 5.0 client gets DISCONNECT 0x9C (Use another
// server) naming a live node as Server Reference, in turn (5.0 section
// 4.11), and a 3.1.1 client, which has no such packet, is closed.
func TestClusterCloseSendsClientsToLiveNodes(t *testing.T) {
	b, oc := runOpsCluster(t, func(o *broker.Options) { o.ServerReference = "static:1883" })
	c1 := v5Client(t, b, "move-1")
	c2 := v5Client(t, b, "move-2")
	old := client(t, b, "move-311")
	c1.sync()
	c2.sync()
	old.sync()
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	var refs []string
	for _, c := range []*rawClient{c1, c2} {
		d := c.v5ExpectDisconnect(packet.UseAnotherServer)
		refs = append(refs, d.Properties.ServerReference)
	}
	old.expectClosedSilently(waitFor)
	<-done
	slices.Sort(refs)
	if !slices.Equal(refs, []string{"n2:1883", "n3:1883"}) {
		t.Errorf("Server References %q, want each live node once", refs)
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if !slices.Equal(oc.calls, []string{"Drain", "Release"}) {
		t.Errorf("cluster calls %v, want Drain then Release", oc.calls)
	}
	if oc.connectedAtRelease != 3 {
		t.Errorf("%d clients connected when the identifiers were released, want all 3 (released before the DISCONNECTs)", oc.connectedAtRelease)
	}
}

// With no live node to send clients to, the configured Server Reference
// is used.
func TestClusterCloseFallsBackToServerReference(t *testing.T) {
	b, oc := runOpsCluster(t, func(o *broker.Options) { o.ServerReference = "static:1883" })
	oc.refs = nil
	c := v5Client(t, b, "fallback")
	c.sync()
	go b.Close()
	if d := c.v5ExpectDisconnect(packet.UseAnotherServer); d.Properties.ServerReference != "static:1883" {
		t.Errorf("Server Reference %q, want the configured static:1883", d.Properties.ServerReference)
	}
}

// A clustered node publishes its view of the cluster under
// $SYS/broker/cluster/ (each node its own: $SYS is never routed).
func TestClusterSysTopics(t *testing.T) {
	b, oc := runOpsCluster(t, func(o *broker.Options) { o.SysInterval = 50 * time.Millisecond })
	w := client(t, b, "sys-cluster")
	want := map[string]string{
		"$SYS/broker/cluster/node":             "n1",
		"$SYS/broker/cluster/nodes/alive":      "2",
		"$SYS/broker/cluster/nodes/n2/clients": "7",
		"$SYS/broker/cluster/nodes/n2/address": "n2:1883",
		"$SYS/broker/cluster/nodes/n3/alive":   "0",
		"$SYS/broker/cluster/nodes/n1/clients": "1",
	}
	eventually(t, "the cluster $SYS topics", func() bool {
		for topic, v := range want {
			m, err := b.Retained(topic)
			if err != nil || len(m) != 1 || string(m[0].Payload) != v {
				return false
			}
		}
		return true
	})
	w.sub("$SYS/broker/cluster/node", 0)
	w.expectPublish("$SYS/broker/cluster/node", "n1")
	for _, topic := range oc.routedTopics() {
		if len(topic) >= 4 && topic[:4] == "$SYS" {
			t.Errorf("%s went to the cluster: $SYS is each node's own", topic)
		}
	}
	if b.NodeName() != "n1" {
		t.Errorf("NodeName %q, want n1", b.NodeName())
	}
}

// The Inbound a cluster gets tells it what a heartbeat carries: the
// clients connected and the listeners' addresses.
func TestClusterLocalNode(t *testing.T) {
	b, oc := runOpsCluster(t, nil)
	ln, ok := oc.in.(broker.LocalNode)
	if !ok {
		t.Fatal("the Inbound is not a broker.LocalNode")
	}
	client(t, b, "local-1") // served: the listener is registered
	if addrs := ln.ListenAddrs(); !slices.Contains(addrs, b.Addr) {
		t.Errorf("ListenAddrs %v, want %s among them", addrs, b.Addr)
	}
	client(t, b, "local-2")
	eventually(t, "2 connections", func() bool { return ln.Connections() == 2 })
	if _, err := b.ClusterStatus(context.Background()); err != nil {
		t.Errorf("ClusterStatus: %v", err)
	}
	single := runBroker(t, testOptions())
	if _, err := single.ClusterStatus(context.Background()); err != broker.ErrNotClustered {
		t.Errorf("ClusterStatus of a single node: %v, want ErrNotClustered", err)
	}
}

// refusingOwners is opsCluster whose claims fail, as without a quorum.
type refusingOwners struct{ *opsCluster }

func (r refusingOwners) Claim(string) error { return errors.New("no quorum") }
func (r refusingOwners) Owns(string) bool   { return true }

// A CONNECT a clustered node cannot serve (0x88: it cannot claim the
// session, or it is shutting down) is sent to a live node instead:
// CONNACK 0x9C with its address as Server Reference, the nodes in turn;
// 3.1.1 has no such code and gets 3 (Server unavailable).
func TestClusterRefusalNamesLiveNode(t *testing.T) {
	oc := &opsCluster{fakeCluster: &fakeCluster{}, refs: []string{"n2:1883", "n3:1883"}}
	o := testOptions()
	o.Cluster = refusingOwners{oc}
	b := runBroker(t, o)
	var refs []string
	for _, id := range []string{"refused-1", "refused-2"} {
		c := v5Dial(t, b.Addr)
		c.send(v5Connect(id))
		ack := expectPacket[*packet.Connack](c)
		if ack.ReasonCode != packet.UseAnotherServer || ack.SessionPresent {
			t.Fatalf("CONNACK %s (%#x) session present %v, want 0x9C and 0 [MQTT-3.2.2-6]", ack.ReasonCode, byte(ack.ReasonCode), ack.SessionPresent)
		}
		refs = append(refs, ack.Properties.ServerReference)
		c.expectClosed(waitFor) // [MQTT-3.2.2-7]
	}
	if !slices.Equal(refs, []string{"n2:1883", "n3:1883"}) {
		t.Errorf("Server References %q, want n2 then n3", refs)
	}
	if _, ack := connectRaw(t, b.Addr, connectPacket("refused-311")); ack.ReasonCode != packet.ServerUnavailable { // return code 3
		t.Errorf("3.1.1 CONNACK %s, want Server unavailable (return code 3)", ack.ReasonCode)
	}
}
