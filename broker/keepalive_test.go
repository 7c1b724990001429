package broker_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// A client that was active past its first keep-alive deadline and then
// falls silent is still dropped, 1.5 x Keep Alive after its last packet,
// and its will is published [MQTT-3.1.2-24]. The broker moves the deadline
// only when one passes (broker/keepalive.go): this checks that a moved
// deadline is enforced too.
func TestKeepAliveEnforcedAfterDeadlineMoved(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watcher := client(t, b, "ka-watcher")
	watcher.sub("ka/will", 1)
	p := withWill("ka-quiet-later", "ka/will", "gone", 1, false)
	p.KeepAlive = 1
	c, _ := connectOK(t, b.Addr, p)
	for range 4 { // 2 s: past the first deadline at 1.5 s
		time.Sleep(500 * time.Millisecond)
		c.sync()
	}
	last := time.Now()
	c.expectClosedSilently(5 * time.Second)
	if d := time.Since(last); d < time.Second {
		t.Errorf("dropped %v after the last packet, want about 1.5 s", d)
	}
	watcher.expectPublish("ka/will", "gone")
}

// A busy client's reads do not move its deadline each time, but a PINGREQ
// is still answered at once after the deadline moved.
func TestKeepAliveMovedDeadlineKeepsAnswering(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	p := connectPacket("ka-busy")
	p.KeepAlive = 1
	c, _ := connectOK(t, b.Addr, p)
	deadline := time.Now().Add(2500 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		c.send(&packet.Pingreq{})
		expectPacket[*packet.Pingresp](c)
		time.Sleep(50 * time.Millisecond)
	}
}
