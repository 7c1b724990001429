// Package clustertest starts a cluster of N in-process Gannet nodes on
// loopback ports for tests: each node a broker.Server with its
// cluster.Cluster (embedded NATS with JetStream, meshed by routes) and an
// MQTT listener on 127.0.0.1:0. It is apart from gannettest so that tests
// that need no cluster do not link NATS. Only tests import it.
package clustertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
)

// FormFor bounds the forming of JetStream on every node.
const FormFor = 60 * time.Second

// Node is one node of a test cluster: a broker with its cluster membership.
type Node struct {
	Name    string
	Cluster *cluster.Cluster
	Server  *broker.Server
	Addr    string     // the MQTT listener
	Done    chan error // receives what Serve returned
}

// FreePorts returns n loopback addresses whose ports were free a moment
// ago, for the NATS route listeners (NATS must be told its port); see
// gannettest.PickPort.
func FreePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		p, err := gannettest.PickPort()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return addrs, nil
}

// Start starts n nodes named n1..nN of the cluster "test", each with routes
// to all (as an operator would configure them; NATS skips the route to
// itself), JetStream replicas min(3, n), and its data under dir/<node>.
// configure, when not nil, adjusts each node's cluster and broker options
// (index i from 0). Start returns once JetStream has formed on every node,
// or an error after FormFor; on error it has closed what it started. It
// takes no testing.TB so that a TestMain can form one cluster for a whole
// package; Close ends it.
func Start(n int, dir string, configure func(i int, co *cluster.Options, bo *broker.Options)) ([]*Node, error) {
	var nodes []*Node
	ports, err := FreePorts(n)
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
		o.DataDir = filepath.Join(dir, o.Node)
		o.Logger = gannettest.Logger()
		bo := gannettest.Options()
		bo.Logger = o.Logger
		if configure != nil {
			configure(i, &o, &bo)
		}
		cl, err := cluster.New(o)
		if err != nil {
			Close(nodes)
			return nil, fmt.Errorf("node %s: %w", o.Node, err)
		}
		bo.Cluster = cl
		srv, err := broker.New(bo)
		if err != nil {
			cl.Close()
			Close(nodes)
			return nil, fmt.Errorf("node %s: %w", o.Node, err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			srv.Close()
			Close(nodes)
			return nil, fmt.Errorf("node %s: %w", o.Node, err)
		}
		nd := &Node{Name: o.Node, Cluster: cl, Server: srv, Addr: l.Addr().String(), Done: make(chan error, 1)}
		go func() { nd.Done <- srv.Serve(l) }()
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		select {
		case <-nd.Cluster.Ready():
		case <-time.After(FormFor):
			Close(nodes)
			return nil, fmt.Errorf("JetStream did not form on %s within %v", nd.Name, FormFor)
		}
	}
	return nodes, nil
}

// Close closes every node (the broker closes its cluster) and waits for
// its Serve to return; a Serve that returns anything but ErrServerClosed
// is reported on stderr, as Close may run after the tests (from TestMain).
func Close(nodes []*Node) {
	for _, nd := range nodes {
		nd.Close()
	}
}

// Close closes the node's broker and waits up to gannettest.WaitFor for its
// Serve to return. Closing a node twice is harmless.
func (nd *Node) Close() {
	nd.Server.Close()
	select {
	case err, ok := <-nd.Done:
		if ok && !errors.Is(err, broker.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "node %s: Serve returned %v\n", nd.Name, err)
		}
		if ok {
			close(nd.Done)
		}
	case <-time.After(gannettest.WaitFor):
	}
}
