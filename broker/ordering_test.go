package broker_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// [MQTT-4.6.0-6]: 1000 QoS 1 messages from one publisher to one topic
// arrive in order at each of three subscribers: with the default inflight
// window, and with a small one that sends most of them through the session
// queue.
func TestOrderingQoS1(t *testing.T) {
	t.Parallel()
	for _, inflight := range []int{64, 4} {
		t.Run(fmt.Sprintf("inflight %d", inflight), func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.MaxInflight = inflight
			b := runBroker(t, opts)
			const n = 1000
			type result struct {
				mu   sync.Mutex
				got  []int
				done chan struct{}
			}
			var results [3]*result
			for i := range results {
				r := &result{done: make(chan struct{})}
				results[i] = r
				c := pahoClient(t, b.Addr, fmt.Sprintf("sub%d", i), 4, nil)
				wait(t, "subscribe", c.Subscribe("order", 1, func(_ mqtt.Client, m mqtt.Message) {
					v, err := strconv.Atoi(string(m.Payload()))
					if err != nil {
						t.Errorf("payload %q", m.Payload())
						return
					}
					r.mu.Lock()
					r.got = append(r.got, v)
					if len(r.got) == n {
						close(r.done)
					}
					r.mu.Unlock()
				}))
			}
			pub := pahoClient(t, b.Addr, "pub", 4, nil)
			toks := make([]mqtt.Token, 0, n)
			for i := range n {
				toks = append(toks, pub.Publish("order", 1, false, strconv.Itoa(i)))
			}
			for _, tok := range toks {
				wait(t, "publish", tok)
			}
			deadline := time.After(20 * time.Second)
			for i, r := range results {
				select {
				case <-r.done:
				case <-deadline:
					r.mu.Lock()
					got := len(r.got)
					r.mu.Unlock()
					t.Fatalf("subscriber %d got %d of %d messages", i, got, n)
				}
				r.mu.Lock()
				got := append([]int(nil), r.got...)
				r.mu.Unlock()
				for j, v := range got {
					if v != j {
						t.Fatalf("subscriber %d: message %d is %d, out of order", i, j, v)
					}
				}
			}
		})
	}
}
