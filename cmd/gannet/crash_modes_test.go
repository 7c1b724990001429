package main

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestCrashFsyncModes kills the broker (SIGKILL) in each fsync mode and
// checks what the store documentation promises of a crash of the process
// alone: nothing the broker acknowledged is lost, in every mode.
//
// Phase 1 leaves the broker idle after a few writes, so that nothing but
// the broker's own syncs can have moved them out of the process before the
// kill:
//   - a persistent session (SUBACK sent) survives;
//   - a persistent session discarded by a Clean Session 1 connection
//     (CONNACK sent) does not come back [MQTT-3.1.2-6];
//   - a 5.0 session ended by DISCONNECT with Session Expiry Interval 0 does
//     not come back [MQTT-3.1.2-23];
//   - a QoS 0 retained message survives [MQTT-3.3.1-5].
//
// Phase 2 streams QoS 1 and QoS 2 messages, acknowledged by PUBACK and
// PUBREC [MQTT-4.3.2-4] [MQTT-4.3.3-8], to an offline persistent
// subscriber, kills the broker in the middle of the stream, and checks that
// the subscriber's session is present and gets every acknowledged message.
//
// The fsync interval is long so that the timer cannot be what saves the
// writes (GANNET_CRASH_FSYNC_INTERVAL sets it). The default run kills once per mode, after a short stream;
// GANNET_LONG=1 kills 5 times per mode after longer streams.
func TestCrashFsyncModes(t *testing.T) {
	kills, stream := 1, 400*time.Millisecond
	if os.Getenv("GANNET_LONG") != "" {
		kills, stream = 5, 2*time.Second
	}
	interval := "1h"
	if v := os.Getenv("GANNET_CRASH_FSYNC_INTERVAL"); v != "" {
		interval = v // to measure with the default, 1s
	}
	for _, mode := range []string{"always", "interval", "never"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			addr := "127.0.0.1:" + freePort(t)
			b := &childBroker{t: t, addr: addr, dir: filepath.Join(dir, "data"),
				extra: []string{"--fsync", mode, "--fsync-interval", interval, "--max-queued", "1000000"}}
			b.start()
			defer b.kill()
			crashPhase1(t, b)
			crashPhase2(t, b, mode, kills, stream)
		})
	}
}

func crashPhase1(t *testing.T, b *childBroker) {
	addr := b.addr
	// The offline subscriber of phase 2: a persistent session.
	sub, _ := mqtt311(t, addr, "dur-sub", false, nil)
	mustToken(t, sub.SubscribeMultiple(map[string]byte{"durable/q1": 1, "durable/q2": 2}, nil))
	sub.Disconnect(100)

	// A persistent session with a queued message, to be discarded.
	gone, _ := mqtt311(t, addr, "dur-gone311", false, nil)
	mustToken(t, gone.Subscribe("durable/gone", 1, nil))
	gone.Disconnect(100)
	pub, _ := mqtt311(t, addr, "dur-pub1", true, nil)
	mustToken(t, pub.Publish("durable/gone", 1, false, "queued for the discarded session"))
	// A 5.0 persistent session, to be ended at DISCONNECT.
	exp, zero := uint32(3600), uint32(0)
	c5 := paho5(t, addr, &paho.Connect{ClientID: "dur-gone5", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &exp}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c5.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "durable/gone5", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{}, 1)
	obs, _ := mqtt311(t, addr, "dur-observer", true, nil)
	mustToken(t, obs.Subscribe("durable/r0", 0, func(mqtt.Client, mqtt.Message) {
		select {
		case seen <- struct{}{}:
		default:
		}
	}))

	// What follows writes to the store with no acknowledgement of a
	// persistent session after it that would sync it by the way.
	// Clean Session 1 discards the session: the CONNACK says it is gone.
	clean, present := mqtt311(t, addr, "dur-gone311", true, nil)
	if present {
		t.Fatal("Clean Session 1 CONNACK with session present")
	}
	clean.Disconnect(100)
	// Session Expiry Interval 0 at DISCONNECT ends the 5.0 session.
	c5.Disconnect(&paho.Disconnect{ReasonCode: 0, Properties: &paho.DisconnectProperties{SessionExpiryInterval: &zero}})
	// A QoS 0 retained message, seen through by a subscriber.
	pub.Publish("durable/r0", 0, true, "r0").Wait()
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the QoS 0 retained message did not arrive")
	}
	obs.Disconnect(100)
	pub.Disconnect(100)
	time.Sleep(300 * time.Millisecond) // the broker is idle: writes are where its syncs left them

	b.kill()
	b.start()

	if c, present := mqtt311(t, addr, "dur-gone311", false, nil); present {
		t.Error("a session discarded by Clean Session 1 (CONNACK sent) came back after the kill")
		c.Disconnect(100)
	} else {
		c.Disconnect(100)
	}
	c5b := paho5(t, addr, &paho.Connect{ClientID: "dur-gone5", CleanStart: false, KeepAlive: 30})
	if c5b.present {
		t.Error("a 5.0 session ended with Session Expiry Interval 0 came back after the kill")
	}
	c5b.Disconnect(&paho.Disconnect{ReasonCode: 0})
	got := make(chan string, 1)
	chk, _ := mqtt311(t, addr, "dur-check", true, nil)
	mustToken(t, chk.Subscribe("durable/r0", 0, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}))
	select {
	case v := <-got:
		if v != "r0" {
			t.Errorf("retained message %q after the kill, want r0", v)
		}
	case <-time.After(2 * time.Second):
		t.Error("the QoS 0 retained message published before the kill is gone")
	}
	chk.Disconnect(100)
}

func crashPhase2(t *testing.T, b *childBroker, mode string, kills int, stream time.Duration) {
	addr := b.addr
	// The subscriber's session, made again should phase 1 have lost it, so
	// that what is counted below is messages lost, not a lost session.
	sub, _ := mqtt311(t, addr, "dur-sub", false, nil)
	mustToken(t, sub.SubscribeMultiple(map[string]byte{"durable/q1": 1, "durable/q2": 2}, nil))
	sub.Disconnect(100)
	if v := os.Getenv("GANNET_CRASH_FSYNC_INTERVAL"); v != "" {
		// Measuring with a real interval: let the timer save the session.
		d, _ := time.ParseDuration(v)
		time.Sleep(d + 500*time.Millisecond)
	}
	rng := rand.New(rand.NewSource(1))
	pub := v5Publisher(t, addr, "dur-pub")
	var mu sync.Mutex
	acked := map[string]map[string]bool{"durable/q1": {}, "durable/q2": {}}
	total := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				tp, qos := "durable/q1", byte(1)
				if seq%2 == 0 {
					tp, qos = "durable/q2", 2
				}
				payload := fmt.Sprintf("%d-%d", w, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := pub.Publish(ctx, &paho.Publish{Topic: tp, QoS: qos, Payload: []byte(payload)})
				cancel()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // the broker is down
					continue
				}
				mu.Lock()
				acked[tp][payload] = true
				total++
				mu.Unlock()
			}
		}()
	}
	for range kills {
		time.Sleep(stream/2 + time.Duration(rng.Int63n(int64(stream))))
		b.kill() // in the middle of the stream
		b.start()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	got := map[string]map[string]bool{"durable/q1": {}, "durable/q2": {}}
	var gmu sync.Mutex
	resumed, present := mqtt311(t, addr, "dur-sub", false, func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			gmu.Lock()
			if got[m.Topic()] != nil {
				got[m.Topic()][string(m.Payload())] = true
			}
			gmu.Unlock()
		})
	})
	defer resumed.Disconnect(100)
	if !present {
		t.Errorf("%s: the offline subscriber's persistent session is gone after the kill", mode)
	}
	lost := func() (n int, example string) {
		mu.Lock()
		defer mu.Unlock()
		gmu.Lock()
		defer gmu.Unlock()
		for tp, ps := range acked {
			for p := range ps {
				if !got[tp][p] {
					n++
					example = tp + " " + p
				}
			}
		}
		return n, example
	}
	wait := 30 * time.Second
	if !present {
		wait = 2 * time.Second // its queue is gone too
	}
	deadline := time.Now().Add(wait)
	n, ex := lost()
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n, ex = lost()
	}
	t.Logf("fsync %s: %d kills, %d messages acknowledged to an offline subscriber, %d lost", mode, kills, total, n)
	if n > 0 {
		t.Errorf("fsync %s: %d of %d acknowledged messages lost across %d kills (e.g. %s)", mode, n, total, kills, ex)
	}
}

// mqtt311 connects a 3.1.1 client (paho.mqtt.golang) without reconnecting
// and returns it with the CONNACK's session present flag.
func mqtt311(t *testing.T, addr, id string, clean bool, configure func(*mqtt.ClientOptions)) (mqtt.Client, bool) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(clean).SetAutoReconnect(false).SetKeepAlive(30 * time.Second).
		SetProtocolVersion(4)
	if configure != nil {
		configure(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	mustToken(t, tok)
	return c, tok.(*mqtt.ConnectToken).SessionPresent()
}

// paho5Client is a paho.golang 5.0 client and its CONNACK's session
// present flag.
type paho5Client struct {
	*paho.Client
	present bool
}

func paho5(t *testing.T, addr string, cp *paho.Connect) paho5Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc, OnClientError: func(error) {}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		t.Fatalf("connect %s: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { nc.Close() })
	return paho5Client{Client: c, present: ack.SessionPresent}
}
