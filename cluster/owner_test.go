package cluster_test

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// online returns the nodes on which clientID has a live connection.
func online(nodes []*node, id string) []string {
	var on []string
	for _, nd := range nodes {
		if ci, _, ok := nd.srv.Client(id); ok && ci.Connected {
			on = append(on, nd.name)
		}
	}
	return on
}

// One client identifier has one owner cluster-wide: a CONNECT on another
// node takes the first connection over, and a 5.0 client hears 0x8E
// [MQTT-3.1.4-3].
func TestTakeoverAcrossNodes(t *testing.T) {
	nodes := three(t)
	_, _, gone := paho5d(t, nodes[0].addr, &paho.Connect{ClientID: "owner-1", CleanStart: true, KeepAlive: 30})
	nc, err := net.Dial("tcp", nodes[1].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A raw 3.1.1 CONNECT on node 2.
	b, _ := (&packet.Connect{Version: packet.V311, ClientID: "owner-1", CleanStart: true, KeepAlive: 30}).Append(nil, packet.V311)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	nc.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := nc.Read(buf); err != nil || buf[0] != 0x20 || buf[3] != 0 {
		t.Fatalf("CONNACK % x, %v", buf, err)
	}
	select {
	case d := <-gone:
		if d.ReasonCode != byte(packet.SessionTakenOver) {
			t.Fatalf("DISCONNECT %#x, want 0x8E", d.ReasonCode)
		}
	case <-time.After(waitFor):
		t.Fatal("the first connection was not taken over")
	}
	eventually(t, "one live connection, on node 2", func() bool {
		on := online(nodes, "owner-1")
		return len(on) == 1 && on[0] == "n2"
	})
}

// Many CONNECTs of one client identifier at once, spread over the nodes,
// end with exactly one live connection: 30, or 100 with GANNET_LONG=1.
func TestConcurrentConnectsOneOwner(t *testing.T) {
	nodes := three(t)
	n := 30
	if os.Getenv("GANNET_LONG") != "" {
		n = 100
	}
	var wg sync.WaitGroup
	conns := make(chan net.Conn, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", nodes[i%3].addr)
			if err != nil {
				t.Error(err)
				return
			}
			conns <- nc
			b, _ := (&packet.Connect{Version: packet.V311, ClientID: "racer", CleanStart: true, KeepAlive: 30}).Append(nil, packet.V311)
			nc.Write(b)
		}()
	}
	wg.Wait()
	close(conns)
	defer func() {
		for nc := range conns {
			nc.Close()
		}
	}()
	var on []string
	deadline := time.Now().Add(2 * waitFor)
	for {
		on = online(nodes, "racer")
		if len(on) == 1 {
			// and it stays so
			time.Sleep(quiet)
			if on = online(nodes, "racer"); len(on) == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("live connections of one client identifier on nodes %v, want exactly one", on)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
