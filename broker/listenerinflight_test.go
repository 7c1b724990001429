package broker_test

import (
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// countPublishes reads PUBLISH packets without acknowledging them until
// none comes for a while, and returns how many came.
func countPublishes(t *testing.T, c *rawClient) int {
	t.Helper()
	n := 0
	for {
		p, err := c.read(quiet)
		if err != nil {
			return n
		}
		if _, ok := p.(*packet.Publish); !ok {
			t.Fatalf("got %s, want PUBLISH", describe(p))
		}
		n++
	}
}

// TestListenerMaxInflight: a listener's MaxInflight replaces
// Options.MaxInflight for its clients, and a 5.0 client's smaller Receive
// Maximum still bounds it [MQTT-3.3.4-9]; clients of other listeners keep
// Options.MaxInflight.
func TestListenerMaxInflight(t *testing.T) {
	o := testOptions()
	o.MaxInflight = 4
	b := runBroker(t, o)
	l := listen(t)
	go b.ServeListener(l, broker.ListenerOptions{Name: "wide", MaxInflight: 10})

	plain := client(t, b, "plain")
	plain.sub("w/#", 1)
	wide, _ := connectOK(t, l.Addr().String(), connectPacket("wide"))
	wide.sub("w/#", 1)
	c5 := v5Connect("wide5")
	c5.Properties.SetUint(packet.PropReceiveMaximum, 6)
	wide5, _ := v5ConnectOK(t, l.Addr().String(), c5)
	wide5.v5Sub(0, packet.Subscription{Filter: "w/#", QoS: 1})

	pub := client(t, b, "pub")
	for i := range 20 {
		pub.publish("w/x", fmt.Sprint(i), 1, false)
	}
	for _, tc := range []struct {
		name string
		c    *rawClient
		want int
	}{{"default listener", plain, 4}, {"listener with MaxInflight 10", wide, 10}, {"5.0 client with Receive Maximum 6", wide5, 6}} {
		if got := countPublishes(t, tc.c); got != tc.want {
			t.Errorf("%s: %d messages unacknowledged, want %d", tc.name, got, tc.want)
		}
	}
}
