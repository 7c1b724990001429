package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// A Clean Start reconnection ends the old session; a will still waiting
// for its delay is published then, not dropped [MQTT-3.1.2-8].
func TestV5WillPublishedWhenCleanStartEndsSession(t *testing.T) {
	b := runBroker(t, testOptions())
	watcher, _ := v5ConnectOK(t, b.Addr, v5Connect("will-watch"))
	watcher.v5Sub(0, packet.Subscription{Filter: "wills/#", QoS: 1})

	p := v5Persistent("leaver", true, 300)
	p.WillFlag = true
	p.Will = packet.Will{Topic: "wills/leaver", Payload: []byte("gone"), QoS: 1}
	p.Will.Properties.SetUint(packet.PropWillDelay, 60)
	c, _ := v5ConnectOK(t, b.Addr, p)
	c.nc.Close() // abnormal end: the will waits for its 60 s delay
	b.waitOffline(t, "leaver")
	watcher.sync() // nothing yet

	v5ConnectOK(t, b.Addr, v5Persistent("leaver", true, 0)) // Clean Start 1
	got := watcher.expectPublish("wills/leaver", "gone")
	watcher.ack(got)
}
