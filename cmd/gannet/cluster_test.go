package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// clusterNode is one gannet process of a test cluster.
type clusterNode struct {
	name, mqtt, admin string
	cmd               *exec.Cmd
	exited            chan struct{} // closed when the process has exited, err set
	err               error
	log               syncBuffer // its stderr, shown if the test fails
}

// syncBuffer is a bytes.Buffer written by a process's output copier and
// read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startClusterNodes starts n gannet processes meshed into the cluster
// "demo", each with an admin listener, as the README's three commands do.
func startClusterNodes(t *testing.T, n int) []*clusterNode {
	t.Helper()
	dir := t.TempDir()
	var routes []string
	routePorts := make([]string, n)
	for i := range n {
		routePorts[i] = freePort(t)
		routes = append(routes, "nats://127.0.0.1:"+routePorts[i])
	}
	var nodes []*clusterNode
	for i := range n {
		nd := &clusterNode{name: fmt.Sprintf("n%d", i+1), mqtt: "127.0.0.1:" + freePort(t), admin: "127.0.0.1:" + freePort(t), exited: make(chan struct{})}
		nd.cmd = exec.Command(gannetBin, "--listen", nd.mqtt, "--data-dir", filepath.Join(dir, nd.name),
			"--admin-address", nd.admin, "--log-level", "warn",
			"--cluster-name", "demo", "--node-name", nd.name, "--cluster-listen", "127.0.0.1:"+routePorts[i],
			"--cluster-routes", strings.Join(routes, ","))
		nd.cmd.Stderr = &nd.log
		if err := nd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { nd.err = nd.cmd.Wait(); close(nd.exited) }()
		nodes = append(nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.cmd.Process.Signal(syscall.SIGTERM)
		}
		defer func() {
			if t.Failed() {
				for _, nd := range nodes {
					t.Logf("%s logged:\n%s", nd.name, nd.log.String())
				}
			}
		}()
		for _, nd := range nodes {
			select {
			case <-nd.exited:
			case <-time.After(10 * time.Second):
				nd.cmd.Process.Kill()
				<-nd.exited
			}
		}
	})
	return nodes
}

// gannet cluster status shows every node alive with its address and the
// streams of the shared state; SIGTERM on a node sends its 5.0 clients to
// a live node (DISCONNECT 0x9C with its address as Server Reference, 5.0
// section 4.11), where they connect at once; the process exits 0 and the
// status run on another node then reports it dead, with exit status 2.
func TestClusterStatusCommandAndSIGTERM(t *testing.T) {
	nodes := startClusterNodes(t, 3)
	var out string
	waitUntil(t, 60*time.Second, "gannet cluster status to report a healthy cluster", func() bool {
		var code int
		out, _, code = run(t, "", "cluster", "status", "--admin", "http://"+nodes[0].admin, "--timeout", "2s")
		return code == 0
	})
	for _, want := range []string{"Cluster demo, as node n1 sees it: JetStream ready", "n1 (this node)", "KV_gannet_demo_owners", "GANNET_demo_MESSAGES"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	for _, nd := range nodes {
		if !strings.Contains(out, nd.mqtt) {
			t.Errorf("status output lacks %s's address %s:\n%s", nd.name, nd.mqtt, out)
		}
	}

	nc, err := net.Dial("tcp", nodes[0].mqtt)
	if err != nil {
		t.Fatal(err)
	}
	disc := make(chan *paho.Disconnect, 1)
	c := paho.NewClient(paho.ClientConfig{Conn: nc, OnServerDisconnect: func(d *paho.Disconnect) { disc <- d }, OnClientError: func(error) {}})
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "mover", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("connect to n1: %v", err)
	}
	nodes[0].cmd.Process.Signal(syscall.SIGTERM)
	var d *paho.Disconnect
	select {
	case d = <-disc:
	case <-time.After(cmdWait):
		t.Fatal("no DISCONNECT after SIGTERM")
	}
	ref := ""
	if d.Properties != nil {
		ref = d.Properties.ServerReference
	}
	if d.ReasonCode != 0x9C || !slices.Contains([]string{nodes[1].mqtt, nodes[2].mqtt}, ref) {
		t.Fatalf("DISCONNECT %#x, Server Reference %q; want 0x9C naming %s or %s", d.ReasonCode, ref, nodes[1].mqtt, nodes[2].mqtt)
	}
	select {
	case <-nodes[0].exited:
		if nodes[0].err != nil {
			t.Errorf("n1 exited with %v after SIGTERM, want 0", nodes[0].err)
		}
	case <-time.After(cmdWait):
		t.Fatal("n1 did not exit after SIGTERM")
	}
	nodes = nodes[1:]
	nc2, err := net.Dial("tcp", ref)
	if err != nil {
		t.Fatal(err)
	}
	c2 := paho.NewClient(paho.ClientConfig{Conn: nc2, OnClientError: func(error) {}})
	if ack, err := c2.Connect(ctx, &paho.Connect{ClientID: "mover", CleanStart: true, KeepAlive: 30}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("the moved client on %s: %v %+v", ref, err, ack)
	}
	c2.Disconnect(&paho.Disconnect{})

	waitUntil(t, 10*time.Second, "n2 to report n1 dead", func() bool {
		var code int
		out, _, code = run(t, "", "cluster", "status", "--admin", nodes[0].admin, "--timeout", "2s")
		return code == 2 && strings.Contains(out, "node n1 is dead")
	})

	_, errOut, code := run(t, "", "cluster", "status", "--admin", "http://127.0.0.1:"+freePort(t), "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "cannot reach the admin listener") {
		t.Errorf("status of a closed port: exit %d, stderr %q", code, errOut)
	}
}
