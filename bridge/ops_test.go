package bridge_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/packet"
)

// outageCount is how many messages the outage tests send: 1,000 by
// default, 10,000 with GANNET_LONG=1.
func outageCount() int {
	if os.Getenv("GANNET_LONG") != "" {
		return 10_000
	}
	return 1_000
}

// persistentSub connects a clean-session-false subscriber whose messages
// go to ch; the broker queues for it while it is away.
func persistentSub(t *testing.T, addr, id, filter string, ch chan msg) mqtt.Client {
	t.Helper()
	c := connectPaho(t, addr, id, false, func(_ mqtt.Client, m mqtt.Message) {
		ch <- msg{m.Topic(), string(m.Payload()), m.Qos(), m.Retained()}
	})
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

// TestBridgeOutage: the remote is stopped, messages are published
// locally, the local broker is restarted, the remote is started again:
// every QoS 1 message arrives, once, in order.
func TestBridgeOutage(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			n := outageCount()
			local, remote := startGannet(t, true), startGannet(t, true)
			cfg := testBridge("b", ver.v, []bridge.Rule{{Pattern: "o/#", Direction: bridge.Out, QoS: 1}}, remote.Addr)
			m := local.bridges(cfg)
			waitState(t, m, "b", bridge.StateConnected)

			ch := make(chan msg, n+100)
			sc := persistentSub(t, remote.Addr, "collector", "o/#", ch)
			sc.Disconnect(50)
			remote.stop()
			waitState(t, m, "b", bridge.StateDisconnected)

			p := connectPaho(t, local.Addr, "producer", true, nil)
			var last mqtt.Token
			for i := range n {
				last = p.Publish("o/seq", 1, false, fmt.Sprint(i))
			}
			if !last.WaitTimeout(waitFor) || last.Error() != nil {
				t.Fatalf("publish: %v", last.Error())
			}
			p.Disconnect(50)
			eventually(t, "every message queued for the remote", func() bool { return bridgeInfo(m, "b").Queued == n })

			local.stop()
			local.start()
			m = local.bridges(cfg)
			if q := bridgeInfo(m, "b").Queued; q != n {
				t.Fatalf("after the local restart %d messages wait, want %d", q, n)
			}
			remote.start()
			persistentSub(t, remote.Addr, "collector", "o/#", ch)
			for i := range n {
				select {
				case got := <-ch:
					if got.Payload != fmt.Sprint(i) {
						t.Fatalf("message %d is %q: out of order or lost", i, got.Payload)
					}
				case <-time.After(waitFor):
					t.Fatalf("only %d of %d messages arrived", i, n)
				}
			}
			select {
			case got := <-ch:
				t.Fatalf("extra message %+v", got)
			case <-time.After(quiet):
			}
			eventually(t, "an empty queue", func() bool { return bridgeInfo(m, "b").Queued == 0 })
		})
	}
}

// TestBridgeInboundDurable: a message from the remote is acknowledged to
// it only once the local broker took it: with the local broker's bridge
// session gone meanwhile, the remote keeps it and sends it again.
func TestBridgeNotifications(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("b", packet.V5, []bridge.Rule{{Pattern: "x/#", Direction: bridge.Both, QoS: 1}}, remote.Addr)
	topic := "$SYS/broker/connection/bridge-b/state"
	s := subscribe(t, local.Addr, topic, 1)
	m := local.bridges(cfg)
	waitState(t, m, "b", bridge.StateConnected)
	for {
		got := s.next()
		if got.Topic != topic {
			t.Fatalf("got %+v", got)
		}
		if got.Payload == "1" {
			break
		}
	}
	remote.stop()
	if got := s.next(); got.Payload != "0" {
		t.Fatalf("after the remote stopped: %+v, want 0", got)
	}
	r, _ := local.Srv.Retained(topic)
	if len(r) != 1 || string(r[0].Payload) != "0" {
		t.Fatalf("retained state %+v, want 0", r)
	}
}

// TestBridgeReload changes, adds and removes bridges through Apply: a
// client of the local broker stays connected, an unchanged bridge keeps
// its connection, and the changed rules take effect.
func TestBridgeReload(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	keep := testBridge("keep", packet.V5, []bridge.Rule{{Pattern: "k/#", QoS: 1}}, remote.Addr)
	chg := testBridge("chg", packet.V5, []bridge.Rule{{Pattern: "a/#", QoS: 1}}, remote.Addr)
	m := local.bridges(keep, chg)
	waitState(t, m, "keep", bridge.StateConnected)
	waitState(t, m, "chg", bridge.StateConnected)
	lsub := subscribe(t, local.Addr, "z/#", 1)
	rsub := subscribe(t, remote.Addr, "#", 1)

	chg2 := chg
	chg2.Rules = []bridge.Rule{{Pattern: "b/#", QoS: 1}}
	add := testBridge("add", packet.V311, []bridge.Rule{{Pattern: "c/#", QoS: 1}}, remote.Addr)
	add.TryPrivate = false
	if err := m.Apply([]bridge.Config{keep, chg2, add}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "chg", bridge.StateConnected)
	waitState(t, m, "add", bridge.StateConnected)
	if c := bridgeInfo(m, "keep").Connects; c != 1 {
		t.Errorf("the unchanged bridge connected %d times, want 1", c)
	}
	publish(t, local.Addr, "a/1", "old", 1, false)
	publish(t, local.Addr, "b/1", "new", 1, false)
	publish(t, local.Addr, "c/1", "added", 1, false)
	publish(t, local.Addr, "k/1", "kept", 1, false)
	got := map[string]bool{}
	for range 3 {
		got[rsub.next().Topic] = true
	}
	rsub.none()
	if !got["b/1"] || !got["c/1"] || !got["k/1"] {
		t.Fatalf("remote got %v, want b/1, c/1 and k/1 (and not a/1)", got)
	}
	// Remove all but keep.
	if err := m.Apply([]bridge.Config{keep}); err != nil {
		t.Fatal(err)
	}
	if len(m.Bridges()) != 1 {
		t.Fatalf("bridges %+v, want only keep", m.Bridges())
	}
	publish(t, local.Addr, "c/2", "gone", 1, false)
	publish(t, local.Addr, "z/1", "still here", 1, false)
	if got := lsub.next(); got.Topic != "z/1" {
		t.Fatalf("the local subscriber got %+v", got)
	}
	if !lsub.c.IsConnectionOpen() {
		t.Fatal("a local client was disconnected by the reload")
	}
	rsub.none()
	// An invalid configuration changes nothing.
	bad := keep
	bad.Rules = nil
	if err := m.Apply([]bridge.Config{bad}); err == nil {
		t.Fatal("Apply accepted a bridge without topic rules")
	}
	if c := bridgeInfo(m, "keep").Connects; c != 1 {
		t.Errorf("the kept bridge connected %d times, want 1", c)
	}
}

// TestBridgeLazy: a lazy bridge connects once Threshold messages wait,
// delivers them, and disconnects after IdleTimeout.
func TestBridgeLazy(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("lazy", packet.V5, []bridge.Rule{{Pattern: "l/#", QoS: 1}}, remote.Addr)
	cfg.StartType = bridge.Lazy
	cfg.Threshold = 5
	cfg.IdleTimeout = 300 * time.Millisecond
	m := local.bridges(cfg)
	waitState(t, m, "lazy", bridge.StateIdle)
	rsub := subscribe(t, remote.Addr, "l/#", 1)
	for i := range 4 {
		publish(t, local.Addr, "l/x", fmt.Sprint(i), 1, false)
	}
	rsub.none()
	if in := bridgeInfo(m, "lazy"); in.State != bridge.StateIdle || in.Connects != 0 {
		t.Fatalf("below the threshold: %+v, want idle and never connected", in)
	}
	publish(t, local.Addr, "l/x", "4", 1, false)
	for i := range 5 {
		if got := rsub.next(); got.Payload != fmt.Sprint(i) {
			t.Fatalf("message %d: %+v", i, got)
		}
	}
	waitState(t, m, "lazy", bridge.StateIdle)
	if c := bridgeInfo(m, "lazy").Connects; c != 1 {
		t.Fatalf("connects %d, want 1", c)
	}
}

// TestBridgeFailover: with the primary down the bridge uses the second
// address; once the primary is back it returns to it.
func TestBridgeFailover(t *testing.T) {
	local, primary, backup := startGannet(t, false), startGannet(t, false), startGannet(t, false)
	paddr := primary.Addr
	primary.stop()
	t.Logf("primary %s backup %s local %s", paddr, backup.Addr, local.Addr)
	cfg := testBridge("fo", packet.V5, []bridge.Rule{{Pattern: "f/#", QoS: 1}}, paddr, backup.Addr)
	m := local.bridges(cfg)
	if in := waitState(t, m, "fo", bridge.StateConnected); in.Address != backup.Addr {
		t.Fatalf("connected to %s, want the backup %s", in.Address, backup.Addr)
	}
	bsub := subscribe(t, backup.Addr, "f/#", 1)
	publish(t, local.Addr, "f/1", "to backup", 1, false)
	if got := bsub.next(); got.Payload != "to backup" {
		t.Fatalf("backup got %+v", got)
	}
	primary.start()
	eventually(t, "the return to the primary", func() bool {
		in := bridgeInfo(m, "fo")
		return in.State == bridge.StateConnected && in.Address == paddr
	})
	psub := subscribe(t, paddr, "f/#", 1)
	publish(t, local.Addr, "f/2", "to primary", 1, false)
	if got := psub.next(); got.Payload != "to primary" {
		t.Fatalf("primary got %+v", got)
	}
}

// TestBridgeRoundRobin: with round_robin the bridge moves to the next
// address when the connection is lost, and stays there.
func TestBridgeRoundRobin(t *testing.T) {
	local, a, b := startGannet(t, false), startGannet(t, false), startGannet(t, false)
	cfg := testBridge("rr", packet.V5, []bridge.Rule{{Pattern: "r/#", QoS: 1}}, a.Addr, b.Addr)
	cfg.RoundRobin = true
	m := local.bridges(cfg)
	if in := waitState(t, m, "rr", bridge.StateConnected); in.Address != a.Addr {
		t.Fatalf("connected to %s, want %s", in.Address, a.Addr)
	}
	if err := m.Restart("rr"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the move to the second address", func() bool {
		in := bridgeInfo(m, "rr")
		return in.State == bridge.StateConnected && in.Address == b.Addr
	})
	if err := m.Restart("nope"); err == nil {
		t.Fatal("Restart of an unknown bridge succeeded")
	}
}

// TestBridgeOnce: a once bridge does not reconnect after losing its
// connection; the restart action connects it again.
func TestBridgeOnce(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("once", packet.V5, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, remote.Addr)
	cfg.StartType = bridge.Once
	m := local.bridges(cfg)
	waitState(t, m, "once", bridge.StateConnected)
	remote.Srv.Disconnect("bridge-once", false)
	waitState(t, m, "once", bridge.StateStopped)
	time.Sleep(3 * cfg.RestartMax)
	if in := bridgeInfo(m, "once"); in.State != bridge.StateStopped || in.Connects != 1 {
		t.Fatalf("%+v: a once bridge must not reconnect", in)
	}
	if err := m.Restart("once"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "once", bridge.StateConnected)
}

// TestBridgeMaxPacketSize: a message above the bridge's max_packet_size is
// dropped and counted; the ones after it still go.
func TestBridgeMaxPacketSize(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("mps", packet.V5, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, remote.Addr)
	cfg.MaxPacketSize = 200
	m := local.bridges(cfg)
	waitState(t, m, "mps", bridge.StateConnected)
	rsub := subscribe(t, remote.Addr, "x/#", 1)
	publish(t, local.Addr, "x/big", strings.Repeat("b", 500), 1, false)
	publish(t, local.Addr, "x/small", "s", 1, false)
	if got := rsub.next(); got.Topic != "x/small" {
		t.Fatalf("got %+v, want only x/small", got)
	}
	if d := bridgeInfo(m, "mps").Dropped; d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
}

// TestBridgeSys: PublishSys puts each bridge's state under $SYS.
func TestBridgeSys(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	m := local.bridges(testBridge("s", packet.V5, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, remote.Addr))
	waitState(t, m, "s", bridge.StateConnected)
	m.PublishSys()
	for topic, want := range map[string]string{
		"$SYS/broker/bridges/s/state":   "connected",
		"$SYS/broker/bridges/s/address": remote.Addr,
		"$SYS/broker/bridges/s/queued":  "0",
	} {
		r, _ := local.Srv.Retained(topic)
		if len(r) != 1 || string(r[0].Payload) != want {
			t.Errorf("%s: %+v, want %q", topic, r, want)
		}
	}
}

// TestBridgeAttemptUnsubscribe: a pattern that was "in" and becomes
// "out" only is unsubscribed on the remote, whose session kept it.
func TestBridgeAttemptUnsubscribe(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("u", packet.V311, []bridge.Rule{{Pattern: "x/#", Direction: bridge.In, QoS: 1}}, remote.Addr)
	cfg.TryPrivate = false
	m := local.bridges(cfg)
	waitState(t, m, "u", bridge.StateConnected)
	if _, subs, _ := remote.Srv.Client("bridge-u"); len(subs) != 1 {
		t.Fatalf("remote subscriptions %+v, want x/#", subs)
	}
	cfg.Rules = []bridge.Rule{{Pattern: "x/#", Direction: bridge.Out, QoS: 1}}
	if err := m.Apply([]bridge.Config{cfg}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "u", bridge.StateConnected)
	eventually(t, "the unsubscription", func() bool {
		_, subs, _ := remote.Srv.Client("bridge-u")
		return len(subs) == 0
	})
}
