package cluster_test

import (
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/cluster"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/internal/gannettest/clustertest"
)

// A persistent subscriber on another node than its publisher keeps what a
// single node keeps under the same queue limit (max_queued_messages), no
// less: its offline session queues the first limit messages and drops,
// and counts, the rest, as a single node does. The publisher sends a
// burst faster than the subscriber's node stores the session's queue, and
// that node's dispatch queue is small, so core NATS drops part of the
// burst on the way (a slow consumer): the node reads those from the
// messages stream (audit.go) instead of losing them.
//
// A clean-clone CI run lost 14 of 250 with the audit reporting no gap
// (stream high 250). One cause is fixed: the audit's ordered consumer
// could hang in nats.go's reset, the audit then finding nothing
// (TestAuditResumesWhenConsumerCannotBeMadeAgain). After that fix 1 run
// of 10 kept 64 and dropped 150 of 250 while the audit had applied all
// 250 (nothing lost on the way to the node): lost on the session's side,
// or only late, since the test stopped counting at the first pause of
// 0.9 s in the resumed delivery. It now waits for the limit (20 s at
// most) and says, when it falls short or pauses, what the offline session
// held when the client came back and the longest pause.
func TestQueueLimitAcrossNodes(t *testing.T) {
	t.Parallel() // forms its own cluster: overlap it with the others
	const limit, sent = 100, 250
	so := gannettest.Options()
	so.MaxQueued = limit
	single := gannettest.RunBroker(t, so)
	kept, dropped := queueLimitRun(t, single.Addr, single.Addr, single.Server, "qlim-single", limit)
	if kept != limit || dropped != sent-limit {
		t.Fatalf("single node: kept %d and dropped %d of %d, want %d and %d", kept, dropped, sent, limit, sent-limit)
	}

	ns, err := clustertest.Start(3, t.TempDir(), func(i int, co *cluster.Options, bo *broker.Options) {
		bo.MaxQueued = limit
		*co = cluster.WithDispatchQueue(*co, 8)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer clustertest.Close(ns)
	sc := ns[1].Cluster
	gaps, filled, liveDropped := sc.GapsFound(), sc.Filled(), sc.LiveDropped()
	kept, dropped = queueLimitRun(t, ns[0].Addr, ns[1].Addr, ns[1].Server, "qlim-cluster", limit)
	t.Logf("across nodes: kept %d, dropped %d; audit: %d gaps, %d filled, applied %d of %d; core NATS dropped %d live copies",
		kept, dropped, sc.GapsFound()-gaps, sc.Filled()-filled, sc.Applied(), sc.StreamHigh(), sc.LiveDropped()-liveDropped)
	if kept != limit || dropped != sent-limit {
		// What tells the places the loss can be apart: live copies that
		// core NATS dropped (slow consumer) that the audit never found as
		// gaps; an audit behind the stream (applied below stream high);
		// or a dispatch goroutine stuck (its stack below).
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Logf("goroutines at the failure:\n%s", stacks.String())
		t.Fatalf("across nodes: kept %d and dropped %d of %d (%d lost), want %d and %d as a single node; the subscriber's node's audit found %d gaps and filled %d (stream high %d, applied %d); core NATS dropped %d live copies there (slow consumer)",
			kept, dropped, sent, sent-kept-dropped, limit, sent-limit, sc.GapsFound()-gaps, sc.Filled()-filled, sc.StreamHigh(), sc.Applied(), sc.LiveDropped()-liveDropped)
	}
}

// queueLimitRun subscribes a persistent 3.1.1 session on subAddr (whose
// broker is subSrv), disconnects it, publishes 250 QoS 1 messages on
// pubAddr, and returns how many the session got when it came back and how
// many subSrv counted as dropped for a full queue.
func queueLimitRun(t *testing.T, pubAddr, subAddr string, subSrv *broker.Server, id string, limit int) (kept, dropped int) {
	t.Helper()
	const sent = 250
	sub := pahoClient(t, subAddr, id+"-sub", false)
	ch := subscribe(t, sub, "qlim/#", 1)
	pub := pahoClient(t, pubAddr, id+"-pub", true)
	converge(t, pub, "qlim/probe", ch)
	conns := subSrv.Stats().Connections
	sub.Disconnect(100)
	eventually(t, "the subscriber to go offline", func() bool { return subSrv.Stats().Connections < conns })
	dropped0 := subSrv.Stats().DroppedQueue
	var toks []mqtt.Token
	for i := range sent {
		toks = append(toks, pub.Publish("qlim/x", 1, false, fmt.Sprint(i)))
	}
	for _, tok := range toks {
		wait(t, "publish", tok)
	}
	// Every message is queued or dropped; none is lost on the way.
	want := uint64(sent - limit)
	for deadline := time.Now().Add(4 * waitFor); subSrv.Stats().DroppedQueue-dropped0 < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	dropped = int(subSrv.Stats().DroppedQueue - dropped0)
	queued := -1
	if ci, _, ok := subSrv.Client(id + "-sub"); ok {
		queued = ci.Queued + ci.Inflight
	}

	got := make(chan mqtt.Message, 2*sent)
	back := gannettest.Paho(t, subAddr, id+"-sub", 4, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false)
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	})
	defer back.Disconnect(50)
	// Until the limit has come (a resumed delivery can pause for a
	// moment on a loaded machine: not a loss), then none more.
	var longest time.Duration // the longest pause between two
	last := time.Now()
	for deadline := time.After(4 * waitFor); kept < limit; {
		select {
		case <-got:
			kept++
			longest = max(longest, time.Since(last))
			last = time.Now()
			continue
		case <-deadline:
		}
		break
	}
	for {
		select {
		case <-got:
			kept++
			continue
		case <-time.After(3 * quiet):
		}
		break
	}
	if kept != limit || longest > 3*quiet {
		t.Logf("%s: the offline session held %d before the client came back; it got %d, the longest pause between two %v",
			id, queued, kept, longest)
	}
	return kept, dropped
}
