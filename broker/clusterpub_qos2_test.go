package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// syncOnlyCluster hides slowCluster's AsyncRouter: Route is synchronous.
type syncOnlyCluster struct{ broker.Cluster }

// A 3.1.1 publisher whose QoS 2 PUBLISH the cluster refuses is
// disconnected (it cannot be told otherwise). The identifier must be free
// again: the PUBLISH it resends (DUP) after reconnecting with its session
// is a new message, not a duplicate answered with PUBREC and never stored
// nor delivered [MQTT-4.3.3-2].
func TestRefused311QoS2ResendIsStored(t *testing.T) {
	b, fc := runSlowCluster(t)
	sub := client(t, b, "r311sub")
	sub.sub("r3/#", 2)
	cp := connectPacket("r311pub")
	cp.CleanStart = false
	pub, _ := connectOK(t, b.Addr, cp)
	pub.send(&packet.Publish{Topic: "r3/x", Payload: []byte("1"), QoS: 2, PacketID: 9})
	eventually(t, "the cluster to be storing r3/x", func() bool { return fc.storing("r3/x") })
	fc.finish(t, "r3/x", errors.New("no quorum"))
	pub.expectClosed(2 * time.Second)
	b.waitOffline(t, "r311pub")

	pub2, _ := connectOK(t, b.Addr, cp)
	pub2.send(&packet.Publish{Topic: "r3/x", Payload: []byte("1"), QoS: 2, PacketID: 9, Dup: true})
	stored := false
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !stored {
		stored = fc.storing("r3/x")
		time.Sleep(10 * time.Millisecond)
	}
	if !stored {
		p, _ := pub2.read(time.Second)
		t.Fatalf("the resent QoS 2 PUBLISH of a message the cluster refused was never given to the cluster (taken for a duplicate); publisher got %s", describe(p))
	}
	fc.finish(t, "r3/x", nil)
	sub.expectPublish("r3/x", "1")
}

// The same through the synchronous Route (a cluster without the
// asynchronous store) [MQTT-4.3.3-2].
func TestRefused311QoS2ResendIsStoredSyncRoute(t *testing.T) {
	fc := newSlowCluster()
	o := testOptions()
	o.Cluster = syncOnlyCluster{fc}
	b := runBroker(t, o)
	sub := client(t, b, "s311sub")
	sub.sub("s3/#", 2)
	cp := connectPacket("s311pub")
	cp.CleanStart = false
	pub, _ := connectOK(t, b.Addr, cp)
	fc.gate("s3/x") <- errors.New("no quorum")
	pub.send(&packet.Publish{Topic: "s3/x", Payload: []byte("1"), QoS: 2, PacketID: 9})
	pub.expectClosed(2 * time.Second)
	b.waitOffline(t, "s311pub")
	pub2, _ := connectOK(t, b.Addr, cp)
	fc.gate("s3/x") <- nil
	pub2.send(&packet.Publish{Topic: "s3/x", Payload: []byte("1"), QoS: 2, PacketID: 9, Dup: true})
	if _, err := sub.read(2 * time.Second); err != nil {
		t.Fatalf("the resent QoS 2 message was never delivered after the cluster refused the first copy (%v)", err)
	}
}
