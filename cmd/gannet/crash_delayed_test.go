package main

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestCrashDelayedPublish holds delayed messages ($delayed/3/...) in the
// built broker, kills it with SIGKILL before they are due, restarts it on
// the same data directory, and checks that every delayed message the
// broker acknowledged is published after the restart, none before its
// delay (a lower bound only: no timing can flake it). A second kill while
// new ones are held shows the same across two restarts.
func TestCrashDelayedPublish(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gannet.yaml")
	if err := os.WriteFile(cfg, []byte("mqtt:\n  delayed_publish:\n    enabled: true\n    max_delay: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freePort(t)
	b := &childBroker{t: t, addr: addr, dir: filepath.Join(dir, "data"), extra: []string{"--config", cfg}}
	b.start()
	defer b.kill()

	const delay = 3 * time.Second
	var mu sync.Mutex
	got := map[int]time.Time{} // sequence number -> first arrival
	count := map[int]int{}
	sub := crashClient(t, addr, "delayed-sub", func(o *mqtt.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			n, _ := strconv.Atoi(string(m.Payload()))
			mu.Lock()
			if _, ok := got[n]; !ok {
				got[n] = time.Now()
			}
			count[n]++
			mu.Unlock()
		})
	})
	mustToken(t, sub.Subscribe("delayed/#", 1, nil))
	pub := crashClient(t, addr, "delayed-pub", nil)

	sent := map[int]time.Time{}
	publish := func(from, to int) {
		for n := from; n < to; n++ {
			sent[n] = time.Now()
			mustToken(t, pub.Publish("$delayed/3/delayed/x", byte(1+n%2), false, strconv.Itoa(n))) // acknowledged: held durably
		}
	}
	all := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := range n {
				if _, ok := got[i]; !ok {
					return false
				}
			}
			return true
		}
	}

	publish(0, 20)
	b.kill()
	mu.Lock()
	early := len(got)
	mu.Unlock()
	b.start()
	publish(20, 30) // held with the first 20 still held
	b.kill()
	b.start()
	waitUntil(t, 30*time.Second, "every delayed message after two kills", all(30))

	mu.Lock()
	defer mu.Unlock()
	for n, at := range got {
		if at.Before(sent[n].Add(delay)) {
			t.Errorf("message %d arrived %v after it was sent, before its %v delay", n, at.Sub(sent[n]), delay)
		}
	}
	dups := 0
	for _, c := range count {
		dups += c - 1
	}
	t.Logf("30 delayed messages across 2 kills: %d arrived before the first kill, %d duplicates (QoS 1 redelivery after a reconnect)", early, dups)
}
