package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// A broker started on the store another broker used resumes its persistent
// sessions (subscriptions and queued QoS 1/2 messages, unacknowledged ones
// resent with DUP [MQTT-4.4.0-1]) and its retained messages
// [MQTT-3.1.2-4] [MQTT-3.1.2-5].
func TestRestartOnSameStoreKeepsSessionsQueuesRetained(t *testing.T) {
	st := memory.New()
	opts := testOptions()
	opts.Store = st
	b1 := runBroker(t, opts)

	sub, _ := connectOK(t, b1.Addr, persistentConnect("keeper"))
	sub.sub("keep/#", 1)
	pub := client(t, b1, "pub1")
	pub.publish("keep/inflight", "one", 1, false)
	first := sub.expectPublish("keep/inflight", "one") // received, never acknowledged
	sub.send(&packet.Disconnect{})
	b1.waitOffline(t, "keeper")
	pub.publish("keep/queued", "two", 1, false)
	pub.publish("keep/retained", "three", 0, true)
	pub.sync()
	b1.Close()

	b2 := runBroker(t, opts)
	st2 := b2.Stats()
	if st2.Sessions != 1 || st2.Retained != 1 || st2.Subscriptions != 1 {
		t.Fatalf("restored %d sessions, %d retained, %d subscriptions; want 1, 1, 1", st2.Sessions, st2.Retained, st2.Subscriptions)
	}
	sub2, ack := connectOK(t, b2.Addr, persistentConnect("keeper"))
	if !ack.SessionPresent {
		t.Fatal("session present 0 after restart, want 1 [MQTT-3.2.2-2]")
	}
	again := sub2.expectPublish("keep/inflight", "one")
	if !again.Dup || again.PacketID != first.PacketID {
		t.Errorf("unacknowledged message resent as %s, want DUP with id %d [MQTT-4.4.0-1]", describe(again), first.PacketID)
	}
	sub2.ack(again)
	queued := sub2.expectPublish("keep/queued", "two")
	sub2.ack(queued)

	fresh, _ := connectOK(t, b2.Addr, connectPacket("fresh"))
	fresh.sub("keep/retained", 0)
	if p := fresh.expectPublish("keep/retained", "three"); !p.Retain {
		t.Errorf("retained message after restart has RETAIN 0 [MQTT-3.3.1-8]")
	}
}

// An inbound QoS 2 message acknowledged with PUBREC is not delivered again
// when the client resends it to a restarted broker before PUBREL
// [MQTT-4.3.3-10]: the identifier awaiting PUBREL is stored.
func TestRestartKeepsInboundQoS2Identifiers(t *testing.T) {
	opts := testOptions()
	opts.Store = memory.New()
	b1 := runBroker(t, opts)
	sub, _ := connectOK(t, b1.Addr, persistentConnect("q2-sub"))
	sub.sub("q2/#", 2)
	pub, _ := connectOK(t, b1.Addr, persistentConnect("q2-pub"))
	pub.send(&packet.Publish{Topic: "q2/x", QoS: 2, PacketID: 7, Payload: []byte("once")})
	expectPacket[*packet.Pubrec](pub)
	b1.Close()

	b2 := runBroker(t, opts)
	pub2, _ := connectOK(t, b2.Addr, persistentConnect("q2-pub"))
	pub2.send(&packet.Publish{Topic: "q2/x", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("once")})
	expectPacket[*packet.Pubrec](pub2)
	pub2.send(&packet.Pubrel{PacketID: 7})
	if comp := expectPacket[*packet.Pubcomp](pub2); comp.ReasonCode != packet.Success {
		t.Errorf("PUBCOMP %v, want success: the identifier was not kept", comp.ReasonCode)
	}
	sub2, _ := connectOK(t, b2.Addr, persistentConnect("q2-sub"))
	p := sub2.expectPublish("q2/x", "once")
	sub2.ack(p)
	sub2.sync() // and no second copy
}
