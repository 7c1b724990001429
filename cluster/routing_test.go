package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
)

// A PUBLISH on one node reaches the subscribers of another, in order per
// publisher and topic [MQTT-4.6.0-5], at the subscription's QoS.
func TestCrossNodeRouting(t *testing.T) {
	nodes := three(t)
	sub := pahoClient(t, nodes[1].addr, "route-sub", true)
	ch := subscribe(t, sub, "route/+/c", 1)
	pub := pahoClient(t, nodes[0].addr, "route-pub", true)
	converge(t, pub, "route/p/c", ch)
	for i := range 50 {
		qos := byte(i % 3)
		wait(t, "publish", pub.Publish("route/x/c", qos, false, fmt.Sprint(i)))
	}
	for i := range 50 {
		m := next(t, ch)
		if string(m.Payload()) != fmt.Sprint(i) || m.Topic() != "route/x/c" {
			t.Fatalf("message %d: %q on %q", i, m.Payload(), m.Topic())
		}
		if want := min(byte(i%3), 1); m.Qos() != want {
			t.Fatalf("message %d at QoS %d, want %d", i, m.Qos(), want)
		}
	}
	none(t, ch)
}

// A node subscribes on NATS once per distinct filter, however many of its
// sessions use it, and a message matching several of its filters reaches
// a subscriber once [MQTT-3.3.5-1].
func TestInterestPerFilter(t *testing.T) {
	nodes := three(t)
	b := nodes[1]
	var chans []<-chan mqtt.Message
	for i := range 5 {
		c := pahoClient(t, b.addr, fmt.Sprintf("interest-%d", i), true)
		chans = append(chans, subscribe(t, c, "interest/+", 1))
	}
	over := pahoClient(t, b.addr, "interest-over", true)
	overCh := subscribe(t, over, "interest/#", 1) // two NATS subjects: interest and interest.>
	if subs, users := b.cl.NATSSubs("interest/+"); subs != 1 || users != 5 {
		t.Fatalf("interest/+: %d NATS subscriptions for %d MQTT subscriptions, want 1 for 5", subs, users)
	}
	if subs, users := b.cl.NATSSubs("interest/#"); subs != 2 || users != 1 {
		t.Fatalf("interest/#: %d NATS subscriptions for %d MQTT subscriptions, want 2 for 1", subs, users)
	}
	wait(t, "subscribe", over.Subscribe("interest/+", 1, nil)) // overlapping: one delivery still
	pub := pahoClient(t, nodes[0].addr, "interest-pub", true)
	converge(t, pub, "interest/p", overCh)
	for _, ch := range chans {
		for len(ch) > 0 {
			<-ch
		}
	}
	wait(t, "publish", pub.Publish("interest/x", 1, false, "once"))
	for _, ch := range append(chans, overCh) {
		if m := next(t, ch); string(m.Payload()) != "once" {
			t.Fatalf("got %q", m.Payload())
		}
		none(t, ch)
	}
	over.Disconnect(50)
	eventually(t, "the filters of a gone session to go", func() bool {
		subs, _ := b.cl.NATSSubs("interest/#")
		return subs == 0
	})
}

// A message goes only to the nodes with a matching subscription.
func TestOnlyNodesWithInterest(t *testing.T) {
	nodes := three(t)
	sub := pahoClient(t, nodes[1].addr, "only-sub", true)
	ch := subscribe(t, sub, "only/t", 0)
	pub := pahoClient(t, nodes[0].addr, "only-pub", true)
	converge(t, pub, "only/t", ch)
	idle := nodes[2].cl.Received()
	for range 200 {
		wait(t, "publish", pub.Publish("only/t", 0, false, "x"))
	}
	for range 200 {
		next(t, ch)
	}
	if got := nodes[2].cl.Received() - idle; got > 20 { // heartbeats and JetStream replies only
		t.Fatalf("node 3, without subscribers, received %d messages while 200 were routed", got)
	}
}

// $share groups span nodes: each message reaches exactly one member,
// wherever it is [MQTT-4.8.2-3]; 3.1.1 (paho) and 5.0 (paho.golang) alike.
func TestSharedAcrossNodes(t *testing.T) {
	nodes := three(t)
	var chans []<-chan mqtt.Message
	for i, nd := range nodes[:2] {
		c := pahoClient(t, nd.addr, fmt.Sprintf("share-m%d", i), true)
		chans = append(chans, subscribe(t, c, "$share/g/share/#", 1))
	}
	c5, ch5 := paho5(t, nodes[2].addr, &paho.Connect{ClientID: "share-m5", CleanStart: true, KeepAlive: 30})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c5.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$share/g/share/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	pub := pahoClient(t, nodes[0].addr, "share-pub", true)
	eventually(t, "the group's interest on every node", func() bool {
		return nodes[0].cl.Interest("share/x") >= 3
	})
	const n = 90
	for i := range n {
		wait(t, "publish", pub.Publish("share/x", 1, false, fmt.Sprint(i)))
	}
	seen := make(map[string]int)
	perMember := make([]int, 3)
	deadline := time.After(waitFor)
	for len(seen) < n {
		select {
		case m := <-chans[0]:
			seen[string(m.Payload())]++
			perMember[0]++
		case m := <-chans[1]:
			seen[string(m.Payload())]++
			perMember[1]++
		case m := <-ch5:
			seen[string(m.Payload)]++
			perMember[2]++
		case <-deadline:
			t.Fatalf("%d of %d messages arrived (per member %v)", len(seen), n, perMember)
		}
	}
	time.Sleep(quiet)
	total := perMember[0] + perMember[1] + perMember[2] + len(chans[0]) + len(chans[1]) + len(ch5)
	if total != n {
		t.Fatalf("%d deliveries of %d messages (per member %v): each must reach one member", total, n, perMember)
	}
	members := 0
	for _, k := range perMember {
		if k > 0 {
			members++
		}
	}
	if members < 2 {
		t.Fatalf("all messages went to one member (%v): the group does not span nodes", perMember)
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	gannettest.EventuallyWithin(t, waitFor, what, cond)
}

// 5.0 properties travel with the message between nodes: user properties,
// content type, correlation data, response topic [MQTT-3.3.2-17]
// [MQTT-3.3.2-20], and what is left of the expiry interval [MQTT-3.3.2-6].
func TestPropertiesAcrossNodes(t *testing.T) {
	nodes := three(t)
	sub, msgs := paho5(t, nodes[2].addr, &paho.Connect{ClientID: "props-sub", CleanStart: true, KeepAlive: 30})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "props/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := paho5(t, nodes[0].addr, &paho.Connect{ClientID: "props-pub", CleanStart: true, KeepAlive: 30})
	eventually(t, "the subscription on node 1", func() bool { return nodes[0].cl.Interest("props/x") > 0 })
	expiry := uint32(600)
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: "props/x", QoS: 1, Payload: []byte("p"), Properties: &paho.PublishProperties{
		ContentType: "text/plain", ResponseTopic: "props/reply", CorrelationData: []byte{1, 2},
		MessageExpiry: &expiry, User: paho.UserProperties{{Key: "k", Value: "v"}},
	}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		p := m.Properties
		if p == nil || p.ContentType != "text/plain" || p.ResponseTopic != "props/reply" || string(p.CorrelationData) != "\x01\x02" ||
			p.User.Get("k") != "v" || p.MessageExpiry == nil || *p.MessageExpiry > 600 || *p.MessageExpiry < 590 {
			t.Fatalf("properties across nodes: %+v", p)
		}
	case <-time.After(waitFor):
		t.Fatal("no message")
	}
}

// QoS 2 across nodes: stored before PUBREC, delivered exactly once and in
// order to a QoS 2 subscriber on another node [MQTT-4.3.3-2].
func TestQoS2AcrossNodes(t *testing.T) {
	nodes := three(t)
	sub := pahoClient(t, nodes[1].addr, "qos2-sub", true)
	ch := subscribe(t, sub, "qos2/t", 2)
	pub := pahoClient(t, nodes[0].addr, "qos2-pub", true)
	converge(t, pub, "qos2/t", ch)
	for i := range 20 {
		wait(t, "publish", pub.Publish("qos2/t", 2, false, fmt.Sprint(i)))
	}
	for i := range 20 {
		m := next(t, ch)
		if string(m.Payload()) != fmt.Sprint(i) || m.Qos() != 2 || m.Duplicate() {
			t.Fatalf("message %d: %q at QoS %d dup %v", i, m.Payload(), m.Qos(), m.Duplicate())
		}
	}
	none(t, ch)
	if m, err := nodes[2].cl.StoredMessage("qos2/t"); err != nil || string(m.Payload) != "19" {
		t.Fatalf("the last QoS 2 message in JetStream: %v, %v", m, err)
	}
}
