package cluster_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// willDelay is the will delay of the clients of the node that dies: long
// enough for a reconnection after a survivor claimed the will, on a noisy
// machine.
const willDelay = 6 * time.Second

// A client of a node that dies, reconnecting to another node before its
// will delay has passed, has no will published [MQTT-3.1.3-9]: neither if
// it reconnects before the survivors find the node dead (the will is not
// claimed yet), nor after a survivor claimed the will and waits for its
// delay. A client that does not reconnect has its will published once,
// after the delay.
func TestWillCancelledByResumeOnAnotherNode(t *testing.T) {
	t.Parallel() // waits on timers (heartbeats, will delay): overlap them
	nodes, err := startNodes(t, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { discardNodes(nodes) })
	sub, dead, other := nodes[0], nodes[2], nodes[1]

	willSub := pahoClient(t, sub.addr, "wr-sub", true)
	wills := subscribe(t, willSub, "wr/#", 1)

	// Three clients of the node that dies, each with a delayed will:
	// "wr-early" reconnects at once, "wr-late" once a survivor claimed
	// its will, "wr-gone" never.
	ids := []string{"wr-early", "wr-late", "wr-gone"}
	for _, id := range ids {
		willConnect(t, dead.addr, id, true)
	}
	for _, id := range ids {
		for deadline := time.Now().Add(waitFor); !other.cl.WillKept(id); {
			if time.Now().After(deadline) {
				t.Fatalf("the will of %s was never kept in the cluster", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	tDeath := time.Now()
	dead.cl.Crash()

	// (a) Before the survivors find the node dead (DeadAfter).
	willConnect(t, other.addr, "wr-early", false)
	t.Logf("wr-early reconnected %v after the death (the survivors find a node dead after %v)", time.Since(tDeath), 3*time.Second)

	// (b) Once a survivor claimed the will, before its delay ends.
	var tClaim time.Time
	for tClaim.IsZero() {
		if time.Since(tDeath) > 3*waitFor {
			t.Fatal("no survivor claimed the will of wr-late")
		}
		if !other.cl.WillKept("wr-late") {
			tClaim = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	willConnect(t, other.addr, "wr-late", false)
	if took := time.Since(tClaim); took >= willDelay {
		t.Fatalf("wr-late reconnected %v after its will was claimed, not within its will delay %v: the test cannot judge", took, willDelay)
	} else {
		t.Logf("wr-late reconnected %v after its will was claimed (%v after the death)", took, time.Since(tDeath))
	}

	// The control: the will of wr-gone comes once, after its delay. The
	// wills of the others would come with it (claimed at the same check,
	// with the same delay): everything published until 3 s after it is
	// counted.
	got := make(map[string]int)
	var window <-chan time.Time
	limit := time.After(willDelay + 3*waitFor)
collect:
	for {
		select {
		case m := <-wills:
			got[m.Topic()]++
			if m.Topic() == "wr/wr-gone" && window == nil {
				t.Logf("wr-gone's will came %v after the death, %v after the claim", time.Since(tDeath), time.Since(tClaim))
				window = time.After(3 * time.Second)
			}
		case <-window:
			break collect
		case <-limit:
			break collect
		}
	}
	if n := got["wr/wr-gone"]; n != 1 {
		t.Errorf("the will of wr-gone, which did not reconnect, was published %d times, not once", n)
	}
	for _, id := range []string{"wr-early", "wr-late"} {
		if n := got["wr/"+id]; n > 0 {
			t.Errorf("the will of %s was published (%d times), though it reconnected within its will delay [MQTT-3.1.3-9]", id, n)
		}
	}
}

// willConnect connects a 5.0 client id to addr with a persistent session,
// the first time with a will on wr/ID delayed by willDelay, trying again
// while the cluster refuses (a node just died: its leaderships move).
func willConnect(t *testing.T, addr, id string, withWill bool) {
	t.Helper()
	expiry, delay := uint32(300), uint32(willDelay/time.Second)
	cp := &paho.Connect{ClientID: id, CleanStart: withWill, KeepAlive: 60,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	if withWill {
		cp.WillMessage = &paho.WillMessage{Topic: "wr/" + id, Payload: []byte(id + " gone"), QoS: 1}
		cp.WillProperties = &paho.WillProperties{WillDelayInterval: &delay}
	}
	deadline := time.Now().Add(3 * waitFor)
	for {
		nc, err := net.DialTimeout("tcp", addr, waitFor)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: nc, PacketTimeout: waitFor, OnClientError: func(error) {}})
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		ack, err := c.Connect(ctx, cp)
		cancel()
		if err == nil && ack.ReasonCode == 0 {
			if withWill {
				// Left connected: its node dies under it.
				t.Cleanup(func() { nc.Close() })
			} else {
				if !ack.SessionPresent {
					t.Errorf("%s: session present 0 on reconnection to another node", id)
				}
				t.Cleanup(func() { c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
			}
			return
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s: connect to %s: %v (%v)", id, addr, err, ack)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
