package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

func versions() []struct {
	name string
	v    byte
} {
	return []struct {
		name string
		v    byte
	}{{"3.1.1", packet.V311}, {"5.0", packet.V5}}
}

// directionRules cover every direction, with and without prefixes.
func directionRules() []bridge.Rule {
	return []bridge.Rule{
		{Pattern: "out/#", Direction: bridge.Out, QoS: 2},
		{Pattern: "in/#", Direction: bridge.In, QoS: 2},
		{Pattern: "both/#", Direction: bridge.Both, QoS: 2},
		{Pattern: "p/#", Direction: bridge.Both, QoS: 1, LocalPrefix: "site/", RemotePrefix: "cloud/edge1/"},
		{Pattern: "q0/#", Direction: bridge.Out, QoS: 0},
	}
}

// TestBridgeGannetDirections bridges two in-process brokers and checks each
// rule direction, prefixes and QoS 0/1/2 (capped by the rule's QoS), at
// 3.1.1 and 5.0.
func TestBridgeGannetDirections(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			local, remote := startGannet(t, false), startGannet(t, false)
			m := local.bridges(testBridge("b", ver.v, directionRules(), remote.Addr))
			waitState(t, m, "b", bridge.StateConnected)

			checkDirections(t, local.Addr, remote.Addr)
			in := bridgeInfo(m, "b")
			if in.Sent < 6 || in.Received < 4 || in.Address != remote.Addr {
				t.Errorf("bridge info %+v: want sent >= 6, received >= 4, address %s", in, remote.Addr)
			}
		})
	}
}

// TestBridgeGannetRetained checks that retained messages cross with their
// flag both ways: a local retained message that existed before the bridge
// started, and a remote one.
func TestBridgeGannetRetained(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			local, remote := startGannet(t, false), startGannet(t, false)
			publish(t, local.Addr, "out/ret", "before", 1, true)
			publish(t, remote.Addr, "in/ret", "remote", 1, true)
			m := local.bridges(testBridge("b", ver.v, directionRules(), remote.Addr))
			waitState(t, m, "b", bridge.StateConnected)

			eventually(t, "the local retained message on the remote", func() bool {
				r, _ := remote.Srv.Retained("out/ret")
				return len(r) == 1 && string(r[0].Payload) == "before"
			})
			eventually(t, "the remote retained message locally", func() bool {
				r, _ := local.Srv.Retained("in/ret")
				return len(r) == 1 && string(r[0].Payload) == "remote"
			})
			// A live retained message keeps its flag on the way out.
			publish(t, local.Addr, "out/ret2", "live", 1, true)
			eventually(t, "the live retained message on the remote", func() bool {
				r, _ := remote.Srv.Retained("out/ret2")
				return len(r) == 1
			})
			s := subscribe(t, remote.Addr, "out/ret2", 1)
			if got := s.next(); !got.Retain || got.Payload != "live" {
				t.Fatalf("got %+v, want the retained message", got)
			}
		})
	}
}

// TestBridgeGannetOutgoingRetainOff: with outgoing_retain false the flag is
// cleared on the way out.
func TestBridgeGannetOutgoingRetainOff(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	c := testBridge("b", packet.V5, directionRules(), remote.Addr)
	c.OutgoingRetain = false
	m := local.bridges(c)
	waitState(t, m, "b", bridge.StateConnected)
	rsub := subscribe(t, remote.Addr, "out/#", 1)
	publish(t, local.Addr, "out/r", "x", 1, true)
	if got := rsub.next(); got.Payload != "x" {
		t.Fatalf("got %+v", got)
	}
	if r, _ := remote.Srv.Retained("out/r"); len(r) != 0 {
		t.Fatalf("the remote retained %+v; outgoing_retain false must clear the flag", r)
	}
}

// TestBridgeGannetLoops bridges two brokers both ways on "#": a message
// published on either side arrives exactly once on each side, at 3.1.1
// (the bridge's loop guard) and 5.0 (No Local).
func TestBridgeGannetLoops(t *testing.T) {
	for _, ver := range []struct {
		name    string
		v       byte
		private bool
	}{{"3.1.1", packet.V311, false}, {"3.1.1 try_private", packet.V311, true}, {"5.0", packet.V5, false}} {
		t.Run(ver.name, func(t *testing.T) {
			local, remote := startGannet(t, false), startGannet(t, false)
			c := testBridge("b", ver.v, []bridge.Rule{{Pattern: "#", Direction: bridge.Both, QoS: 1}}, remote.Addr)
			c.TryPrivate = ver.private
			m := local.bridges(c)
			waitState(t, m, "b", bridge.StateConnected)
			lsub := subscribe(t, local.Addr, "#", 1)
			rsub := subscribe(t, remote.Addr, "#", 1)
			for i := range 5 {
				publish(t, local.Addr, "a/l", fmt.Sprint("l", i), 1, false)
				publish(t, remote.Addr, "a/r", fmt.Sprint("r", i), 1, false)
			}
			count := func(s *subscriber) map[string]int {
				got := map[string]int{}
				for range 10 {
					m := s.next()
					got[m.Payload]++
				}
				s.none()
				return got
			}
			for side, got := range map[string]map[string]int{"local": count(lsub), "remote": count(rsub)} {
				for i := range 5 {
					if got[fmt.Sprint("l", i)] != 1 || got[fmt.Sprint("r", i)] != 1 {
						t.Fatalf("%s side got %v, want each message once", side, got)
					}
				}
			}
		})
	}
}

// checkDirections drives directionRules across a running bridge: each
// direction, prefixes, QoS 0/1/2 and the rule's QoS cap.
func checkDirections(t *testing.T, localAddr, remoteAddr string) {
	t.Helper()
	rsub := subscribe(t, remoteAddr, "#", 2)
	lsub := subscribe(t, localAddr, "#", 2)

	for qos := byte(0); qos <= 2; qos++ {
		// out: local to remote, not back.
		publish(t, localAddr, "out/a", fmt.Sprint("o", qos), qos, false)
		if got := rsub.next(); got.Topic != "out/a" || got.Payload != fmt.Sprint("o", qos) || got.QoS != qos {
			t.Fatalf("remote got %+v, want out/a o%d at QoS %d", got, qos, qos)
		}
		lsub.next() // the local subscriber's own copy

		// in: remote to local.
		publish(t, remoteAddr, "in/a", fmt.Sprint("i", qos), qos, false)
		if got := lsub.next(); got.Topic != "in/a" || got.Payload != fmt.Sprint("i", qos) || got.QoS != qos {
			t.Fatalf("local got %+v, want in/a i%d at QoS %d", got, qos, qos)
		}
		rsub.next()
	}
	// An out-only pattern does not come in; an in-only one does not go out.
	publish(t, remoteAddr, "out/x", "no", 1, false)
	rsub.next()
	publish(t, localAddr, "in/x", "no", 1, false)
	lsub.next()
	lsub.none()
	rsub.none()

	// both, each way, once.
	publish(t, localAddr, "both/l", "L", 1, false)
	if got := rsub.next(); got.Topic != "both/l" {
		t.Fatalf("remote got %+v", got)
	}
	lsub.next()
	publish(t, remoteAddr, "both/r", "R", 1, false)
	if got := lsub.next(); got.Topic != "both/r" {
		t.Fatalf("local got %+v", got)
	}
	rsub.next()
	lsub.none()
	rsub.none()

	// Prefixes: site/p/x locally is cloud/edge1/p/x remotely, and back.
	publish(t, localAddr, "site/p/x", "pl", 2, false)
	if got := rsub.next(); got.Topic != "cloud/edge1/p/x" || got.QoS != 1 {
		t.Fatalf("remote got %+v, want cloud/edge1/p/x at QoS 1 (the rule's)", got)
	}
	lsub.next()
	publish(t, remoteAddr, "cloud/edge1/p/y", "pr", 1, false)
	if got := lsub.next(); got.Topic != "site/p/y" || got.Payload != "pr" {
		t.Fatalf("local got %+v, want site/p/y", got)
	}
	rsub.next()

	// The rule's QoS caps: q0 goes out at QoS 0.
	publish(t, localAddr, "q0/a", "z", 2, false)
	if got := rsub.next(); got.Topic != "q0/a" || got.QoS != 0 {
		t.Fatalf("remote got %+v, want q0/a at QoS 0", got)
	}
	lsub.next()
	lsub.none()
	rsub.none()

}

// TestGannetHonoursTryPrivate: a 3.1.1 client connecting with Mosquitto's
// bridge bit (protocol level 0x84) is accepted, does not get its own
// messages back on a matching subscription, and keeps the retain flag of
// live messages, as Mosquitto's bridges expect of their remote.
func TestGannetHonoursTryPrivate(t *testing.T) {
	g := startGannet(t, false)
	got := make(chan *client.Message, 10)
	o := client.DefaultOptions()
	o.Server = "mqtt://" + g.Addr
	o.Version = packet.V311
	o.ClientID = "private"
	o.TryPrivate = true
	o.OnMessage = func(m *client.Message) { got <- m }
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatalf("connect with protocol level 0x84: %v", err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, client.Subscription{Filter: "t/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "t/own", []byte("own"), client.PublishOptions{QoS: 1}); err != nil {
		t.Fatal(err)
	}
	publish(t, g.Addr, "t/other", "other", 1, true)
	select {
	case m := <-got:
		if m.Topic != "t/other" || !m.Retain {
			t.Fatalf("got %s retain=%v, want t/other with its retain flag (and not our own t/own)", m.Topic, m.Retain)
		}
	case <-time.After(waitFor):
		t.Fatal("no message")
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected %s", m.Topic)
	case <-time.After(quiet):
	}
}
