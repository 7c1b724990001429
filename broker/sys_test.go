package broker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// $SYS topics carry Mosquitto's names, are retained, reach only filters
// that do not start with a wildcard [MQTT-4.7.2-1], and count the traffic
// the test made.
func TestSysTopicsCountTraffic(t *testing.T) {
	opts := testOptions()
	opts.SysInterval = 200 * time.Millisecond
	opts.Version = "9.9.9"
	b := runBroker(t, opts)

	pub := client(t, b, "sys-pub")
	for range 5 {
		pub.publish("sys/test", "x", 1, false)
	}
	pub.sync()
	time.Sleep(500 * time.Millisecond) // at least two $SYS rounds

	watcher, _ := connectOK(t, b.Addr, connectPacket("sys-watch"))
	watcher.sub("$SYS/broker/version", 0)
	if p := watcher.expectPublish("$SYS/broker/version", "gannet 9.9.9"); !p.Retain {
		t.Errorf("$SYS/broker/version not retained")
	}
	watcher.sub("$SYS/broker/messages/received", 0)
	p, ok := watcher.expect().(*packet.Publish)
	if !ok || p.Topic != "$SYS/broker/messages/received" {
		t.Fatalf("expected $SYS/broker/messages/received, got %v", p)
	}
	if n, err := strconv.Atoi(string(p.Payload)); err != nil || n < 5 {
		t.Errorf("messages/received = %q, want at least the 5 published", p.Payload)
	}

	// A "#" subscriber sees none of it [MQTT-4.7.2-1].
	all, _ := connectOK(t, b.Addr, connectPacket("sys-all"))
	all.sub("#", 0)
	all.sync()
}
