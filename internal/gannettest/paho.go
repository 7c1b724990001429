package gannettest

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Paho connects a github.com/eclipse/paho.mqtt.golang client (MQTT 3.1 with
// version 3, 3.1.1 with 4) with Clean Session 1 and no automatic
// reconnection, and disconnects it when the test ends. configure, when not
// nil, adjusts the options before connecting.
func Paho(t testing.TB, addr, id string, version uint, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(version).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(WaitFor).
		SetWriteTimeout(WaitFor).
		SetKeepAlive(30 * time.Second)
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	Wait(t, "paho "+id+": connect", c.Connect())
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// Wait waits for a paho token and fails the test when it times out or
// carries an error.
func Wait(t testing.TB, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(WaitFor) {
		t.Fatalf("%s: timed out after %v", what, WaitFor)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Messages subscribes a paho client to filter and returns the channel its
// messages arrive on, with room for depth of them; a message that finds
// the channel full fails the test.
func Messages(t testing.TB, c mqtt.Client, filter string, qos byte, depth int) <-chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, depth)
	Wait(t, "subscribe "+filter, c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- m:
		default:
			t.Errorf("paho subscriber on %q: channel full", filter)
		}
	}))
	return ch
}

// Next receives one message from ch within WaitFor.
func Next[M any](t testing.TB, ch <-chan M) M {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(WaitFor):
		t.Fatalf("no message within %v", WaitFor)
		var zero M
		return zero
	}
}

// None checks that nothing arrives on ch within d.
func None[M any](t testing.TB, ch <-chan M, d time.Duration) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %v", m)
	case <-time.After(d):
	}
}
