package cluster_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// startRestartable starts n restartable nodes of one cluster, each with
// routes to all, and waits until JetStream has formed on every one.
func startRestartable(t *testing.T, n int) ([]restartable, []*node) {
	t.Helper()
	dir := t.TempDir()
	ports, err := freePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://"+p)
	}
	specs := make([]restartable, n)
	nodes := make([]*node, n)
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
	return specs, nodes
}

// metaLeader returns the JetStream meta leader as nd's NATS server knows
// it ("" when it knows none).
func metaLeader(nd *node) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := nd.cl.Status(ctx)
	if err != nil {
		return ""
	}
	return st.MetaLeader
}

// A rolling stop and a death, on one cluster (forming one takes seconds):
//
// A node that leaves gracefully (SIGTERM, Server.Close) hands the
// leadership of the JetStream meta group over before it stops, as it does
// its streams', so that the survivors need not wait for an election: NATS
// elects a new leader only after its election timeout (at least
// cluster.DefaultElectionTimeout, 1.5 s, after the leader's last word,
// which an idle leader sends every 2 heartbeats at most, 0.75 s:
// election.go), so at least 0.75 s after the close, while a handover takes
// milliseconds. A survivor must know a live meta leader within handedOver
// of the close. (The embedded nats-server's Shutdown steps its raft
// leaders down: this guards that Close keeps going through it.)
//
// A node that starts after a node died adopts the dead node's persistent
// sessions, as the nodes running at the death would have: here none could
// (the death left one node, without a quorum), and the two that start
// again later never heard the dead node's heartbeat. The session is
// adopted exactly once cluster-wide, by one of them.
func TestLeaveAndLateAdoption(t *testing.T) {
	const handedOver = 700 * time.Millisecond
	t.Parallel()
	specs, nodes := startRestartable(t, 3)
	var leader *node
	eventually(t, "a meta leader known to every node", func() bool {
		l := metaLeader(nodes[0])
		for _, nd := range nodes {
			if metaLeader(nd) != l {
				return false
			}
			if nd.name == l {
				leader = nd
			}
		}
		return leader != nil
	})
	// L leaves first, M second, and S, the session's node, dies last.
	li := slices.Index(nodes, leader)
	mi, si := (li+1)%3, (li+2)%3
	m, s := nodes[mi], nodes[si]
	for _, nd := range []*node{m, s} {
		eventually(t, leader.name+" hears "+nd.name, func() bool { n, ok := nodeView(leader, nd.name); return ok && n.Alive })
	}
	const id = "orphan-sub"
	sub := pahoClient(t, s.addr, id, false)
	subscribe(t, sub, "orphan/#", 1)
	sub.Disconnect(0)
	eventually(t, "the session stored cluster-wide", func() bool { ok, _ := m.cl.StoredSession(id); return ok })
	if owner, err := m.cl.Owner(id); err != nil || owner != s.cl.Origin() {
		t.Fatalf("%s is owned by %q (%v), want %s (%s)", id, owner, err, s.name, s.cl.Origin())
	}
	dead := s.cl.Origin()

	stop(t, leader)
	stopped := time.Now()
	for {
		l := metaLeader(m)
		if l != "" && l != leader.name && l == metaLeader(s) {
			t.Logf("%s led the meta group; %s leads it %v after the close", leader.name, l, time.Since(stopped))
			break
		}
		if time.Since(stopped) > handedOver {
			t.Fatalf("%v after %s (the meta leader) left gracefully, the survivors know no new meta leader (%q, %q): it was not handed over",
				time.Since(stopped), leader.name, metaLeader(m), metaLeader(s))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// M leaves; S, alone, dies; L and M start again.
	stop(t, m)
	s.cl.Crash()
	nodes[li], nodes[mi] = specs[li].start(t), specs[mi].start(t)
	a, b := nodes[li], nodes[mi]
	for _, nd := range []*node{a, b} {
		select {
		case <-nd.cl.Ready():
		case <-time.After(formFor):
			t.Fatalf("JetStream did not form on the restarted %s", nd.name)
		}
	}
	adopted := func() uint64 { x, _ := a.cl.Adopted(); y, _ := b.cl.Adopted(); return x + y }
	deadline := time.Now().Add(4 * waitFor)
	for adopted() == 0 {
		if time.Now().After(deadline) {
			owner, err := a.cl.Owner(id)
			t.Fatalf("no node adopted the session of the dead %s (%s): its owner is still %q (%v)", s.name, dead, owner, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	owner, err := a.cl.Owner(id)
	if err != nil || (owner != a.cl.Origin() && owner != b.cl.Origin()) {
		t.Errorf("after the adoption %s is owned by %q (%v), want %s (%s) or %s (%s)", id, owner, err, a.name, a.cl.Origin(), b.name, b.cl.Origin())
	}
	time.Sleep(2 * time.Second) // the other node's look, if any, is over
	if n := adopted(); n != 1 {
		t.Errorf("the session was adopted %d times, want once cluster-wide", n)
	}
}

// A client whose persistent session is stored resumes it on a live node
// while the JetStream meta group has no leader (its leader's node is cut
// off, as by kill -9, and NATS elects another only after its election
// timeout, 1.5 to 2.25 s after the last heartbeat: election.go; 4 to 9 s
// with nats-server's own timing, when this test was written). The CONNECT
// reads the session through a consumer, whose creation needs the meta
// leader, for at most a second, then by a direct get that needs none.
// The streams' leaders are on the live nodes here, as they are for most
// kills.
//
// The claim first holds the previous owner's checkpoint (takeover.go
// holdBeforeClaim: a read that waits up to a second for a consumer, then
// a checkpoint write): its compare-and-set gets its own attempt's time
// after the hold (it had what the hold left: 0x88 at 3.02 s, every run on
// a loaded machine); and with no route to the meta leader, the checkpoint
// is read by a direct get at once (claimread.go), so that the CONNECT
// waits for one consumer's timeout (the session's read), not two (2.0 to
// 3.0 s, and 0x88 at the 2.5 s bound in 1 of 10 runs, before).
func TestConnectWithoutMetaLeader(t *testing.T) {
	t.Parallel()
	pc := startProxied(t)
	m := metaLeaderIndex(t, pc.nodes)
	leader := pc.nodes[m]
	a, b := pc.nodes[(m+1)%3], pc.nodes[(m+2)%3]
	const id = "metaless"
	sub := pahoClient(t, a.addr, id, false)
	subscribe(t, sub, "metaless/#", 1)
	sub.Disconnect(0)
	eventually(t, "the session stored", func() bool { ok, _ := b.cl.StoredSession(id); return ok })
	// The streams' leaders move to the other nodes, the meta leader stays,
	// and a and b alone can write every stream: one of them leads it and
	// both replicas are current. That the meta leader leads no stream is
	// not enough: a stream it has just stepped down from may have no
	// leader yet (the cut would then leave it to an election, 4 to 9 s),
	// and a replica on a or b still catching up cannot count towards a
	// quorum until it has caught up from a leader.
	streams := b.cl.StreamCount()
	eventually(t, "a and b lead every stream, their replicas current", func() bool {
		leader.cl.StepDownStreams()
		time.Sleep(100 * time.Millisecond)
		return !leader.cl.LeadsStreams() && leader.cl.IsMetaLeader() &&
			len(a.cl.StreamsLed())+len(b.cl.StreamsLed()) == streams &&
			a.cl.StreamsCurrent() && b.cl.StreamsCurrent()
	})

	pc.isolate(m, true)
	cut := time.Now()
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	buf, _ := (&packet.Connect{Version: packet.V311, ClientID: id, KeepAlive: 60}).Append(nil, packet.V311)
	nc.Write(buf)
	dec := &packet.Decoder{Version: packet.V311}
	ack, ok := readPacket(t, nc, dec).(*packet.Connack)
	took := time.Since(cut)
	if !ok {
		t.Fatalf("no CONNACK %v after the meta leader %s was cut off", took, leader.name)
	}
	if ack.ReasonCode != 0 || !ack.SessionPresent {
		t.Fatalf("CONNACK %#x, session present %v, %v after the meta leader %s was cut off: want the stored session resumed",
			byte(ack.ReasonCode), ack.SessionPresent, took, leader.name)
	}
	// With nats-server's own timing (no election within 4 s) a bound on
	// the time proved that the CONNECT did without a meta leader; since
	// elections take 1.5 to 2.25 s (election.go) a new one may be there
	// before the CONNECT ends whatever it waited for, so a bound would only
	// measure the machine's load (2.93 s once in a full-package run): the
	// test fails on the refusal (0x88 at 3.0 s before the fix) and logs the
	// time.
	t.Logf("session resumed on %s %v after the meta leader %s was cut off (meta leader %s knows now: %q)", b.name, took, leader.name, b.name, metaLeader(b))
}

// The persistent sessions of a node that dies while it leads the nodes
// bucket (the heartbeats) and the owners bucket are adopted by a survivor
// once NATS has elected new leaders: until then no heartbeat arrives, and
// no claim can be written. The survivors do not take each other for dead
// meanwhile: a live node's session stays its own.
func TestAdoptAfterLeaderDeath(t *testing.T) {
	t.Parallel()
	pc := startProxied(t)
	p1, p2, p3 := pc.nodes[0], pc.nodes[1], pc.nodes[2]
	const dead, live = "leaderdeath-p1", "leaderdeath-p2"
	s1 := pahoClient(t, p1.addr, dead, false)
	subscribe(t, s1, "leaderdeath/#", 1)
	s1.Disconnect(0)
	s2 := pahoClient(t, p2.addr, live, false) // stays connected
	subscribe(t, s2, "leaderdeath/#", 1)
	eventually(t, "the sessions stored", func() bool {
		a, _ := p3.cl.StoredSession(dead)
		b, _ := p3.cl.StoredSession(live)
		return a && b
	})
	eventually(t, "p1 leads every stream and bucket", func() bool {
		p1.cl.LeadAll()
		time.Sleep(200 * time.Millisecond)
		return p1.cl.LeadsAll()
	})
	liveOwner, err := p3.cl.Owner(live)
	if err != nil || liveOwner != p2.cl.Origin() {
		t.Fatalf("%s is owned by %q (%v), want p2", live, liveOwner, err)
	}

	pc.isolate(0, true) // p1 dies (its NATS cut off from the others)
	cut := time.Now()
	adopted := func() uint64 { a, _ := p2.cl.Adopted(); b, _ := p3.cl.Adopted(); return a + b }
	for adopted() == 0 {
		if time.Since(cut) > 30*time.Second {
			owner, err := p3.cl.Owner(dead)
			t.Fatalf("30 s after the death of p1, which led the buckets, no survivor adopted its session (owner %q, %v)", owner, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("adopted %v after the death", time.Since(cut))
	time.Sleep(2 * time.Second)
	if owner, err := p3.cl.Owner(live); err != nil || owner != p2.cl.Origin() {
		t.Errorf("the live p2's session %s is owned by %q (%v): a survivor took p2 for dead", live, owner, err)
	}
	if n := adopted(); n != 1 {
		t.Errorf("%d sessions adopted, want 1 (p1's)", n)
	}
	if !s2.IsConnectionOpen() {
		t.Errorf("the client of the live p2 lost its connection")
	}
}

// metaLeaderIndex waits for a JetStream meta leader among nodes and
// returns its index.
func metaLeaderIndex(t testing.TB, nodes []*node) int {
	t.Helper()
	m := -1
	eventually(t, "a meta leader", func() bool {
		for i, nd := range nodes {
			if nd.cl.IsMetaLeader() {
				m = i
				return true
			}
		}
		return false
	})
	return m
}
