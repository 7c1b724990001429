package cluster_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// QoS 0 messages published together on one node cross to the others in
// frames of many messages (cluster/forwarder.go), not one NATS message
// each, and still arrive in order per publisher and topic [MQTT-4.6.0-5],
// once per session however many of its node's filters match
// [MQTT-3.3.5-1], with their 5.0 properties, and only where a filter
// matches.
func TestQoS0FramesKeepOrder(t *testing.T) {
	nodes := three(t)
	const pubs, perTopic = 4, 100
	suffixes := []string{"a", "b"}

	// On node 2, one session whose two filters both match the "a" topics
	// (two NATS subscriptions: each "a" frame arrives twice); on node 3,
	// the "b" topics only.
	sub := gannettest.Dial(t, nodes[1].addr, packet.V5)
	sub.ConnectOK(gannettest.Connect5("frames-sub"))
	sub.Subscribe(0, packet.Subscription{Filter: "frames/#"}, packet.Subscription{Filter: "frames/+/a"})
	subB := gannettest.Dial(t, nodes[2].addr, packet.V311)
	subB.ConnectOK(gannettest.Connect311("frames-sub-b"))
	subB.Sub(0, packet.Subscription{Filter: "frames/+/b"})
	var pc []*gannettest.Conn
	for i := range pubs {
		c := gannettest.Dial(t, nodes[0].addr, packet.V5)
		c.ConnectOK(gannettest.Connect5(fmt.Sprintf("frames-pub-%d", i)))
		pc = append(pc, c)
	}
	framesConverge(t, pc[0], "frames/probe/b", sub, subB)

	release := nodes[0].cl.HoldFrames()
	defer release()
	frames0, _ := nodes[0].cl.Frames()
	in0 := nodes[1].cl.Received()
	for i, c := range pc {
		// Each publisher's messages in one write, the topics interleaved.
		var ps []packet.Packet
		for k := range perTopic {
			for _, s := range suffixes {
				p := &packet.Publish{Topic: fmt.Sprintf("frames/%d/%s", i, s), Payload: []byte(strconv.Itoa(k))}
				if k%10 == 0 {
					p.Properties.User = []packet.UserProperty{{Key: "k", Value: strconv.Itoa(k)}}
				}
				ps = append(ps, p)
			}
		}
		c.Send(ps...)
	}
	total := pubs * perTopic * len(suffixes)
	eventually(t, "the messages to wait in their frames", func() bool { return nodes[0].cl.OpenFrameMessages() == total })
	release()

	next := map[string]int{}
	for range total {
		p := framesNext(t, sub)
		want := next[p.Topic]
		if string(p.Payload) != strconv.Itoa(want) {
			t.Fatalf("%s: message %q, want %d: out of order, lost or repeated [MQTT-4.6.0-5] [MQTT-3.3.5-1]", p.Topic, p.Payload, want)
		}
		if want%10 == 0 {
			if up := p.Properties.User; len(up) != 1 || up[0].Key != "k" || up[0].Value != strconv.Itoa(want) {
				t.Fatalf("%s: message %d with user properties %v, want k=%d [MQTT-3.3.2-17]", p.Topic, want, up, want)
			}
		} else if len(p.Properties.User) != 0 {
			t.Fatalf("%s: message %d with user properties %v, want none", p.Topic, want, p.Properties.User)
		}
		next[p.Topic] = want + 1
	}
	// One frame per topic: 8 frames, the 4 "a" ones received twice on
	// node 2, where one NATS message per message and filter makes 1,200.
	if n := nodes[1].cl.Received() - in0; n > 400 { // frames, heartbeats, watchers, JetStream replies
		t.Errorf("node 2 received %d NATS messages for %d MQTT messages", n, total)
	}
	if p, err := sub.Read(quiet); err == nil {
		t.Fatalf("after every message: %s", gannettest.Describe(p))
	}
	nextB := map[string]int{}
	for range pubs * perTopic {
		p := framesNext(t, subB)
		if !strings.HasSuffix(p.Topic, "/b") || string(p.Payload) != strconv.Itoa(nextB[p.Topic]) {
			t.Fatalf("frames/+/b subscriber: %q on %q, want %d on a b topic", p.Payload, p.Topic, nextB[p.Topic])
		}
		nextB[p.Topic]++
	}
	if p, err := subB.Read(quiet); err == nil {
		t.Fatalf("frames/+/b subscriber, after every message: %s", gannettest.Describe(p))
	}
	frames, _ := nodes[0].cl.Frames()
	if n := frames - frames0; n > uint64(2*pubs*len(suffixes)) {
		t.Errorf("%d messages crossed in %d frames, want at most %d (one per topic)", total, n, 2*pubs*len(suffixes))
	}
}

// framesConverge publishes probes on topicName from pub until each of subs
// gets one, then drains them.
func framesConverge(t *testing.T, pub *gannettest.Conn, topicName string, subs ...*gannettest.Conn) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for _, s := range subs {
		for {
			pub.Send(&packet.Publish{Topic: topicName, Payload: []byte("probe")})
			if _, err := s.Read(50 * time.Millisecond); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscription for %q never reached the publisher's node", topicName)
			}
		}
	}
	for _, s := range subs {
		for {
			if _, err := s.Read(quiet); err != nil {
				break
			}
		}
	}
}

// framesNext returns the next PUBLISH a subscriber receives.
func framesNext(t *testing.T, c *gannettest.Conn) *packet.Publish {
	t.Helper()
	p, ok := c.Expect().(*packet.Publish)
	if !ok {
		t.Fatalf("got %s, want a PUBLISH", gannettest.Describe(p))
	}
	return p
}
