package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// slowCluster is a cluster whose stores complete only when the test says:
// as broker.AsyncRouter it holds each Store's callback; its synchronous
// Route (what a broker without the asynchronous path calls) waits until
// the test releases that message, as a JetStream round trip would.
type slowCluster struct {
	fakeCluster
	smu       sync.Mutex
	pending   map[string]func(error) // topic → Store's callback
	release   map[string]chan error  // topic → Route's wait
	forwarded []string
}

func newSlowCluster() *slowCluster {
	return &slowCluster{pending: make(map[string]func(error)), release: make(map[string]chan error)}
}

func (f *slowCluster) gate(topic string) chan error {
	f.smu.Lock()
	defer f.smu.Unlock()
	ch := f.release[topic]
	if ch == nil {
		ch = make(chan error, 1)
		f.release[topic] = ch
	}
	return ch
}

func (f *slowCluster) Route(p *packet.Publish) error {
	if p.QoS > 0 || p.Retain {
		select {
		case err := <-f.gate(p.Topic):
			if err != nil {
				return err
			}
		case <-time.After(10 * time.Second):
			return errors.New("never released")
		}
	}
	return f.fakeCluster.Route(p)
}

func (f *slowCluster) Store(p *packet.Publish, done func(error)) {
	f.smu.Lock()
	f.pending[p.Topic] = done
	f.smu.Unlock()
}

func (f *slowCluster) Forward(p *packet.Publish) error {
	f.smu.Lock()
	f.forwarded = append(f.forwarded, p.Topic)
	f.smu.Unlock()
	return nil
}

// finish completes the store of topic with err: the callback Store holds
// (a synchronous Route is released too, but the test then fails: Store
// was never called).
func (f *slowCluster) finish(t *testing.T, topic string, err error) {
	t.Helper()
	select {
	case f.gate(topic) <- err:
	default:
	}
	eventually(t, "the cluster to be storing "+topic, func() bool { return f.storing(topic) })
	f.smu.Lock()
	done := f.pending[topic]
	delete(f.pending, topic)
	f.smu.Unlock()
	go done(err) // from another goroutine, as the cluster's client does
}

func (f *slowCluster) storing(topic string) bool {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.pending[topic] != nil
}

var _ broker.AsyncRouter = (*slowCluster)(nil)

func runSlowCluster(t *testing.T) (*testBroker, *slowCluster) {
	t.Helper()
	fc := newSlowCluster()
	o := testOptions()
	o.Cluster = fc
	return runBroker(t, o), fc
}

// The read loop does not wait for the cluster to store a QoS 1/2 message:
// the PUBLISH packets after it are read (a PINGREQ is answered) while it is
// stored. The acknowledgements still wait for the store, and go out in the
// order of the PUBLISH packets even when the stores complete in another
// order [MQTT-4.6.0-2] [MQTT-4.6.0-3]; the messages reach subscribers in
// order too [MQTT-4.6.0-6], and go to the other nodes in that order.
func TestClusterStoresWithoutBlockingTheReadLoop(t *testing.T) {
	b, fc := runSlowCluster(t)
	sub := client(t, b, "sub")
	sub.sub("o/#", 1)
	pub := v5Client(t, b, "pub")
	pub.send(
		&packet.Publish{Topic: "o/1", Payload: []byte("1"), QoS: 1, PacketID: 1},
		&packet.Publish{Topic: "o/2", Payload: []byte("2"), QoS: 2, PacketID: 2},
		&packet.Publish{Topic: "o/3", Payload: []byte("3"), QoS: 1, PacketID: 3},
		&packet.Publish{Topic: "$SYS/o", Payload: []byte("4"), QoS: 1, PacketID: 4}, // not routed: acknowledged behind the others
	)
	// Answered while the first store is pending: before, the read loop
	// waited in Route for it.
	pub.send(&packet.Pingreq{})
	p, err := pub.read(2 * time.Second)
	if err != nil {
		t.Fatalf("no answer to PINGREQ while a message is being stored: the read loop waits for the cluster (%v)", err)
	}
	if p.Type() != packet.PINGRESP {
		t.Fatalf("got %s %s before the store completed, want PINGRESP", p.Type(), describe(p))
	}
	for _, topic := range []string{"o/1", "o/2", "o/3"} {
		eventually(t, topic+" being stored", func() bool { return fc.storing(topic) })
	}
	fc.finish(t, "o/3", nil)
	fc.finish(t, "o/2", nil)
	pub.v5Quiet(200 * time.Millisecond) // nothing acknowledged while o/1 is not stored
	sub.v5Quiet(0)
	fc.finish(t, "o/1", nil)
	if a := expectPacket[*packet.Puback](pub); a.PacketID != 1 || a.ReasonCode != packet.Success {
		t.Fatalf("first acknowledgement %+v, want PUBACK 1", a)
	}
	if a := expectPacket[*packet.Pubrec](pub); a.PacketID != 2 || a.ReasonCode != packet.Success {
		t.Fatalf("second acknowledgement %+v, want PUBREC 2", a)
	}
	if a := expectPacket[*packet.Puback](pub); a.PacketID != 3 {
		t.Fatalf("third acknowledgement %+v, want PUBACK 3", a)
	}
	if a := expectPacket[*packet.Puback](pub); a.PacketID != 4 {
		t.Fatalf("fourth acknowledgement %+v, want PUBACK 4", a)
	}
	for _, want := range []string{"1", "2", "3"} {
		m := sub.expectPublish("o/"+want, want)
		sub.ack(m)
	}
	fc.smu.Lock()
	fw := fc.forwarded
	fc.smu.Unlock()
	if len(fw) != 3 || fw[0] != "o/1" || fw[1] != "o/2" || fw[2] != "o/3" {
		t.Fatalf("forwarded to other nodes %q, want [o/1 o/2 o/3]", fw)
	}
	// The QoS 2 flow completes.
	pub.send(&packet.Pubrel{PacketID: 2})
	if c := expectPacket[*packet.Pubcomp](pub); c.ReasonCode != packet.Success {
		t.Fatalf("PUBCOMP %#x, want success", byte(c.ReasonCode))
	}
}

// A message the cluster cannot store is refused, in its place among the
// acknowledgements, and delivered nowhere: 5.0 hears 0x80 (and the QoS 2
// identifier is free again [MQTT-4.3.3-9]); 3.1.1 is disconnected.
func TestClusterAsyncStoreRefusal(t *testing.T) {
	b, fc := runSlowCluster(t)
	sub := client(t, b, "sub")
	sub.sub("r/#", 2)
	pub := v5Client(t, b, "pub")
	pub.send(
		&packet.Publish{Topic: "r/1", Payload: []byte("1"), QoS: 2, PacketID: 1},
		&packet.Publish{Topic: "r/2", Payload: []byte("2"), QoS: 1, PacketID: 2},
	)
	eventually(t, "r/2 being stored", func() bool { return fc.storing("r/2") })
	fc.finish(t, "r/2", nil)
	fc.finish(t, "r/1", errors.New("no quorum"))
	if a := expectPacket[*packet.Pubrec](pub); a.PacketID != 1 || a.ReasonCode != packet.UnspecifiedError {
		t.Fatalf("first acknowledgement %+v, want PUBREC 1 0x80", a)
	}
	if a := expectPacket[*packet.Puback](pub); a.PacketID != 2 || a.ReasonCode != packet.Success {
		t.Fatalf("second acknowledgement %+v, want PUBACK 2", a)
	}
	m := sub.expectPublish("r/2", "2") // and not r/1
	sub.ack(m)
	sub.sync()
	// Identifier 1 is new again: its message is delivered.
	pub.send(&packet.Publish{Topic: "r/3", Payload: []byte("3"), QoS: 2, PacketID: 1})
	fc.finish(t, "r/3", nil)
	if a := expectPacket[*packet.Pubrec](pub); a.PacketID != 1 || a.ReasonCode != packet.Success {
		t.Fatalf("acknowledgement %+v, want PUBREC 1", a)
	}
	sub.expectPublish("r/3", "3")

	old := client(t, b, "old")
	old.send(&packet.Publish{Topic: "r/4", Payload: []byte("4"), QoS: 1, PacketID: 9})
	fc.finish(t, "r/4", errors.New("no quorum"))
	old.expectClosedSilently(waitFor)
}

// Messages from other nodes delivered through one InboundBatch are written
// to a subscriber together when the batch is flushed, in order.
func TestClusterInboundBatch(t *testing.T) {
	b, fc := runClustered(t)
	sub := client(t, b, "sub")
	sub.sub("in/#", 0)
	ib, ok := fc.in.(broker.InboundBatcher)
	if !ok {
		t.Fatal("the broker's Inbound does not batch")
	}
	batch := ib.NewBatch()
	for i := range 3 {
		batch.Deliver(&packet.Publish{Topic: "in/x", Payload: []byte{'0' + byte(i)}}, "", "")
	}
	if p, err := sub.read(200 * time.Millisecond); err == nil {
		t.Fatalf("got %s before the batch was flushed", describe(p))
	}
	batch.Flush()
	for i := range 3 {
		sub.expectPublish("in/x", string(rune('0'+i)))
	}
	batch.Deliver(&packet.Publish{Topic: "in/x", Payload: []byte("again")}, "", "")
	batch.Flush()
	sub.expectPublish("in/x", "again")
}

// Many stores completing in random order, from many goroutines: the
// acknowledgements and the deliveries keep the order of the PUBLISH
// packets [MQTT-4.6.0-2] [MQTT-4.6.0-6].
func TestClusterAsyncOrderUnderShuffle(t *testing.T) {
	b, fc := runSlowCluster(t)
	sub := client(t, b, "sub")
	sub.sub("s/#", 0)
	pub := client(t, b, "pub")
	const n = 300
	var ps []packet.Packet
	for i := 1; i <= n; i++ {
		ps = append(ps, &packet.Publish{Topic: fmt.Sprintf("s/%d", i), Payload: []byte(fmt.Sprint(i)), QoS: 1, PacketID: uint16(i)})
	}
	pub.send(ps...)
	eventually(t, "every message being stored", func() bool {
		fc.smu.Lock()
		defer fc.smu.Unlock()
		return len(fc.pending) == n
	})
	fc.smu.Lock()
	dones := make([]func(error), 0, n)
	for _, done := range fc.pending {
		dones = append(dones, done) // map order: random
	}
	fc.smu.Unlock()
	for _, done := range dones {
		go done(nil)
	}
	for i := 1; i <= n; i++ {
		if a := expectPacket[*packet.Puback](pub); a.PacketID != uint16(i) {
			t.Fatalf("acknowledgement %d is PUBACK %d", i, a.PacketID)
		}
	}
	for i := 1; i <= n; i++ {
		sub.expectPublish(fmt.Sprintf("s/%d", i), fmt.Sprint(i))
	}
}
