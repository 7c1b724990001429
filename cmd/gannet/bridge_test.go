package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// bridgeOutageCount is 1,000 by default and 10,000 with GANNET_LONG=1.
func bridgeOutageCount() int {
	if os.Getenv("GANNET_LONG") != "" {
		return 10_000
	}
	return 1_000
}

// collect connects a persistent 3.1.1 subscriber that sends what it gets
// to ch.
func collect(t *testing.T, addr, id, filter string, ch chan string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { ch <- string(m.Payload()) })
	c := mqtt.NewClient(o)
	mustToken(t, c.Connect())
	mustToken(t, c.Subscribe(filter, 1, nil))
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// TestBridgeKill9Outage runs gannet with a mosquitto.conf holding a
// connection section, unchanged: the remote (another gannet) is killed,
// messages are published locally, the local broker is killed with -9 and
// restarted, the remote is restarted: every QoS 1 message arrives, in
// order.
func TestBridgeKill9Outage(t *testing.T) {
	n := bridgeOutageCount()
	dir := t.TempDir()
	raddr, laddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	_, lport, _ := net.SplitHostPort(laddr)
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence true

connection edge
address %s
topic o/# out 1
cleansession false
restart_timeout 1
`, lport, raddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := &childBroker{t: t, addr: raddr, dir: filepath.Join(dir, "remote")}
	remote.start()
	defer remote.kill()
	local := &childBroker{t: t, addr: laddr, dir: filepath.Join(dir, "local"), extra: []string{"--config", conf}}
	local.start()
	defer local.kill()

	ch := make(chan string, n+100)
	c := collect(t, raddr, "collector", "o/#", ch)
	c.Disconnect(50)
	// The bridge is up once its subscription... it has none on the remote
	// (out only): wait for the state notification instead.
	state := make(chan string, 10)
	watch := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + laddr).SetClientID("watch").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { state <- string(m.Payload()) }))
	mustToken(t, watch.Connect())
	mustToken(t, watch.Subscribe("$SYS/broker/connection/+/state", 1, nil))
	waitUntil(t, 15*time.Second, "the bridge to connect", func() bool {
		select {
		case s := <-state:
			return s == "1"
		default:
			return false
		}
	})
	watch.Disconnect(50)
	remote.kill()

	p := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + laddr).SetClientID("producer").SetOrderMatters(true))
	mustToken(t, p.Connect())
	var last mqtt.Token
	for i := range n {
		last = p.Publish("o/seq", 1, false, fmt.Sprint(i))
	}
	mustToken(t, last)
	p.Disconnect(50)

	local.cmd.Process.Signal(syscall.SIGKILL)
	local.cmd.Wait()
	local.cmd = nil
	local.start()
	remote.start()
	collect(t, raddr, "collector", "o/#", ch)
	for i := range n {
		select {
		case got := <-ch:
			if got != fmt.Sprint(i) {
				t.Fatalf("message %d is %q: lost or out of order", i, got)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d messages arrived", i, n)
		}
	}
}

// TestBridgeSIGHUP: a bridge added to the configuration file starts on
// SIGHUP, without dropping the clients of the broker.
func TestBridgeSIGHUP(t *testing.T) {
	dir := t.TempDir()
	raddr, laddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	conf := filepath.Join(dir, "gannet.yaml")
	write := func(bridges string) {
		if err := os.WriteFile(conf, []byte("sys:\n  interval: 0s\n"+bridges), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	remote := &childBroker{t: t, addr: raddr, dir: filepath.Join(dir, "remote")}
	remote.start()
	defer remote.kill()
	local := &childBroker{t: t, addr: laddr, dir: filepath.Join(dir, "local"), extra: []string{"--config", conf}}
	local.start()
	defer local.kill()

	ch := make(chan string, 10)
	collect(t, raddr, "collector", "h/#", ch)
	p := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + laddr).SetClientID("producer").SetAutoReconnect(false))
	mustToken(t, p.Connect())
	mustToken(t, p.Publish("h/1", 1, false, "before"))
	select {
	case got := <-ch:
		t.Fatalf("%q crossed before the bridge existed", got)
	case <-time.After(300 * time.Millisecond):
	}
	write(fmt.Sprintf(`bridges:
  - name: hup
    addresses: [%s]
    restart_min: 100ms
    topics:
      - pattern: h/#
        qos: 1
`, raddr))
	local.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 15*time.Second, "a message across the new bridge", func() bool {
		mustToken(t, p.Publish("h/2", 1, false, "after"))
		select {
		case got := <-ch:
			return got == "after"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	if !p.IsConnectionOpen() {
		t.Fatal("the reload dropped a client")
	}
}
