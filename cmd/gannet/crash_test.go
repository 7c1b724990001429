package main

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
)

// TestCrashDurability kills the broker with SIGKILL at random moments
// (seeded) while independent clients (paho) stream QoS 1 and QoS 2
// messages to persistent sessions, restarts it on the same data
// directory, and checks the promise of the durable store: no message the
// broker acknowledged is lost, no QoS 2 message arrives twice, per-topic
// order holds, and sessions and retained messages survive.
//
// The short version (3 kills) runs in every test run; GANNET_LONG=1 runs 25.
// GANNET_CRASH_SEED picks the seed.
func TestCrashDurability(t *testing.T) {
	kills := 3
	if os.Getenv("GANNET_LONG") != "" {
		kills = 25
	}
	if s := os.Getenv("GANNET_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	seed := int64(1)
	if s := os.Getenv("GANNET_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d, %d kills", seed, kills)

	dir := t.TempDir()
	port := freePort(t)
	addr := "127.0.0.1:" + port
	b := &childBroker{t: t, addr: addr, dir: filepath.Join(dir, "data")}
	b.start()
	defer b.kill()

	rec := newReceiver()
	subQ1 := crashClient(t, addr, "crash-sub-q1", func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(rec.handler("q1"))
	})
	mustToken(t, subQ1.Subscribe("crash/q1", 1, nil))
	// The QoS 2 subscriber is paho.golang (5.0): it keeps the identifiers
	// it answered with PUBREC, so a PUBLISH the broker resends after a
	// crash is not delivered twice, as [MQTT-4.3.3-10] asks of receivers.
	// (paho.mqtt.golang delivers such a resend again.)
	v5Subscriber(t, addr, "crash-sub-q2", "crash/q2", rec.handler5("q2"))
	retainer := crashClient(t, addr, "crash-retainer", nil)
	mustToken(t, retainer.Publish("crash/retained", 1, true, "kept"))

	// The publisher is paho.golang: its Publish returns only once the
	// message is acknowledged (PUBACK, or PUBCOMP after PUBREC), and fails
	// when the connection is lost first, so "acknowledged" means what the
	// broker promised. It publishes without pause while the broker is
	// killed at random moments.
	pub := v5Publisher(t, addr, "crash-pub")
	var mu sync.Mutex
	acked := map[string][]int{} // topic -> acknowledged sequence numbers
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := 1; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, q := range []struct {
				topic string
				qos   byte
			}{{"crash/q1", 1}, {"crash/q2", 2}} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := pub.Publish(ctx, &paho.Publish{Topic: q.topic, QoS: q.qos, Payload: []byte(strconv.Itoa(seq))})
				cancel()
				if err == nil {
					mu.Lock()
					acked[q.topic] = append(acked[q.topic], seq)
					mu.Unlock()
				} else {
					time.Sleep(5 * time.Millisecond) // the broker is down
				}
			}
		}
	}()
	for range kills {
		time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
		b.kill() // SIGKILL at a random moment of the stream
		b.start()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done

	// Everything acknowledged arrives; then the streams go quiet.
	waitUntil(t, 30*time.Second, "every acknowledged message to arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rec.hasAll("q1", acked["crash/q1"]) && rec.hasAll("q2", acked["crash/q2"])
	})
	time.Sleep(500 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if d := duplicates(rec.got["q2"]); len(d) > 0 {
		t.Errorf("QoS 2 messages delivered more than once: %v", d)
	}
	// Order is judged on the messages whose publish completed: one whose
	// token failed at a crash may be resent by the publisher later, after
	// newer ones, which no broker can undo.
	for _, s := range []struct{ name, topic string }{{"q1", "crash/q1"}, {"q2", "crash/q2"}} {
		if bad := outOfOrder(only(rec.got[s.name], acked[s.topic])); bad != "" {
			t.Errorf("%s: order broken: %s", s.name, bad)
		}
	}
	if os.Getenv("GANNET_CRASH_DEBUG") != "" {
		t.Logf("q1 received: %v", rec.got["q1"])
	}
	t.Logf("acknowledged %d QoS 1 and %d QoS 2 messages across %d kills; received %d and %d",
		len(acked["crash/q1"]), len(acked["crash/q2"]), kills, len(rec.got["q1"]), len(rec.got["q2"]))

	check := crashClient(t, addr, "crash-check", nil)
	got := make(chan string, 1)
	mustToken(t, check.Subscribe("crash/retained", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }))
	select {
	case v := <-got:
		if v != "kept" {
			t.Errorf("retained message %q after crashes, want kept", v)
		}
	case <-time.After(5 * time.Second):
		t.Error("retained message lost across crashes")
	}
}

// childBroker is the gannet binary run as a child process.
type childBroker struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	// extra are more command-line arguments (--fsync never, say).
	extra []string
}

func (b *childBroker) start() {
	b.t.Helper()
	args := append([]string{"--listen", b.addr, "--data-dir", b.dir, "--store", "pebble", "--log-level", "warn"}, b.extra...)
	b.cmd = exec.Command(gannetBin, args...)
	b.cmd.Stderr = os.Stderr
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	waitUntil(b.t, 15*time.Second, "the broker to listen", func() bool {
		c, err := net.DialTimeout("tcp", b.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (b *childBroker) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	b.cmd = nil
}

func crashClient(t *testing.T, addr, id string, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetKeepAlive(5 * time.Second).SetOrderMatters(true).SetResumeSubs(true).
		SetStore(mqtt.NewOrderedMemoryStore()) // resend in the original order [MQTT-4.6.0-1]
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	mustToken(t, c.Connect())
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func mustToken(t *testing.T, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT operation failed: %v", tok.Error())
	}
}

// receiver records the sequence numbers each subscriber gets, in order.
type receiver struct {
	mu  sync.Mutex
	got map[string][]int
}

func newReceiver() *receiver { return &receiver{got: map[string][]int{}} }

func (r *receiver) handler(name string) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		n, _ := strconv.Atoi(string(m.Payload()))
		r.mu.Lock()
		r.got[name] = append(r.got[name], n)
		r.mu.Unlock()
	}
}

// v5Publisher runs an autopaho client with a persistent session.
func v5Publisher(t *testing.T, addr, id string) *autopaho.ConnectionManager {
	t.Helper()
	u, _ := url.Parse("mqtt://" + addr)
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     5,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         3600,
		ConnectTimeout:                5 * time.Second,
		ReconnectBackoff:              func(int) time.Duration { return 50 * time.Millisecond },
		OnConnectError:                func(error) {},
		ClientConfig:                  paho.ClientConfig{ClientID: id, OnClientError: func(error) {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if err := cm.AwaitConnection(actx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		cm.Disconnect(dctx)
		dcancel()
		cancel()
	})
	return cm
}

func (r *receiver) handler5(name string) func(paho.PublishReceived) (bool, error) {
	return func(pr paho.PublishReceived) (bool, error) {
		n, _ := strconv.Atoi(string(pr.Packet.Payload))
		r.mu.Lock()
		r.got[name] = append(r.got[name], n)
		r.mu.Unlock()
		return true, nil
	}
}

// v5Subscriber runs an autopaho client with a persistent session (Clean
// Start 0 on reconnects, long expiry) subscribed to filter at QoS 2.
func v5Subscriber(t *testing.T, addr, id, filter string, onMsg func(paho.PublishReceived) (bool, error)) {
	t.Helper()
	u, _ := url.Parse("mqtt://" + addr)
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{}, 1)
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     5,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         3600,
		ConnectTimeout:                5 * time.Second,
		ReconnectBackoff:              func(int) time.Duration { return 50 * time.Millisecond },
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
			if !ack.SessionPresent {
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				defer scancel()
				cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 2}}})
			}
			select {
			case up <- struct{}{}:
			default:
			}
		},
		OnConnectError: func(error) {},
		ClientConfig: paho.ClientConfig{
			ClientID:          id,
			OnClientError:     func(error) {},
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){onMsg},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("autopaho subscriber did not connect")
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		cm.Disconnect(dctx)
		dcancel()
		cancel()
	})
}

func (r *receiver) hasAll(name string, want []int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]bool{}
	for _, n := range r.got[name] {
		seen[n] = true
	}
	for _, n := range want {
		if !seen[n] {
			return false
		}
	}
	return true
}

func duplicates(seqs []int) []int {
	seen, dup := map[int]bool{}, []int{}
	for _, n := range seqs {
		if seen[n] {
			dup = append(dup, n)
		}
		seen[n] = true
	}
	return dup
}

// outOfOrder reports the first message that arrived, for the first time,
// after a later one of the same publisher.
func outOfOrder(seqs []int) string {
	seen, last := map[int]bool{}, 0
	for i, n := range seqs {
		if seen[n] {
			continue // a redelivery (QoS 1 allows it)
		}
		seen[n] = true
		if n < last {
			return fmt.Sprintf("message %d arrived at position %d after %d", n, i, last)
		}
		last = n
	}
	return ""
}

// only keeps the elements of seqs that are in keep.
func only(seqs, keep []int) []int {
	in := make(map[int]bool, len(keep))
	for _, n := range keep {
		in[n] = true
	}
	var out []int
	for _, n := range seqs {
		if in[n] {
			out = append(out, n)
		}
	}
	return out
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) string { t.Helper(); return fmt.Sprint(gannettest.FreePort(t)) }
