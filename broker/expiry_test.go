package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// [MQTT-3.3.2-5]: expired entries of an offline session's queue are
// evicted before the queue limit is applied, so that they do not crowd
// out fresh messages acknowledged to their publisher.
func TestQueueEvictsExpiredBeforeLimit_MQTT_3_3_2_5(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxQueued = 5
	b := runBroker(t, opts)
	const id = "exp-queue-sub"
	sub, _ := v5ConnectOK(t, b.Addr, v5Persistent(id, true, 60))
	sub.v5Sub(0, packet.Subscription{Filter: "expq/#", QoS: 1})
	sub.v5Leave(b, id, nil)

	pub := v5Client(t, b, "exp-queue-pub")
	for i := range 5 {
		pub.v5Publish(v5Expiring("expq/a", fmt.Sprint("stale ", i), 1, false, 1))
	}
	time.Sleep(1100 * time.Millisecond)
	for i := range 5 {
		pub.v5Pub("expq/a", fmt.Sprint("fresh ", i), 1, false)
	}
	if d := b.Stats().DroppedQueue; d != 0 {
		t.Errorf("%d fresh messages dropped as queue full behind expired ones", d)
	}
	sub, present := v5Reconnect(t, b, id, 60)
	if !present {
		t.Fatal("Session Present 0")
	}
	for i := range 5 {
		sub.ack(sub.expectPublish("expq/a", fmt.Sprint("fresh ", i)))
	}
	sub.v5ExpectNothing()
}
