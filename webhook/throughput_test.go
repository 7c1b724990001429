//go:build unix

package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bench"
	"github.com/gannet-mqtt/gannet/webhook"
)

// TestThroughputWithWebhooks measures messages per second through one
// broker with a webhook on every event (each message published and
// delivered) and with one on message.published against none, in one
// run, alternating them. By default a
// short run checks that it works; GANNET_LONG=1 measures (3 rounds of 3s
// each way) and logs the ratio:
//
//	GANNET_LONG=1 go test -run TestThroughputWithWebhooks -v ./webhook
func TestThroughputWithWebhooks(t *testing.T) {
	rounds, dur := 1, 300*time.Millisecond
	if os.Getenv("GANNET_LONG") != "" {
		rounds, dur = 3, 3*time.Second
	}
	var received atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	defer rcv.Close()
	b, _ := runBroker(t, nil)

	// Besides msgs/s, msgs per CPU second of the whole process (broker,
	// bench clients, webhook sender and receiver): less at the mercy of
	// other load on the machine.
	var cpuNone, cpuPublished, cpuEvery float64
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var perCPU float64
	run := func() float64 {
		c0 := cpu()
		cfg := bench.DefaultConfig()
		cfg.Addr = b.Addr
		cfg.Clients = 4
		cfg.QoS = 1
		cfg.Duration = dur
		cfg.Drain = 2 * time.Second
		cfg.ClientIDPrefix = "tp-"
		r, err := bench.Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatalf("bench: %v", err)
		}
		if r.Messages == nil || r.Messages.Received == 0 {
			t.Fatalf("bench: nothing received: %+v", r)
		}
		perCPU = float64(r.Messages.Received) / (cpu() - c0).Seconds()
		return r.Messages.ReceivedPerSecond
	}
	var none, published, every float64
	var last []webhook.Stats
	withHook := func(events ...string) float64 {
		h := webhook.DefaultHook()
		h.URL = rcv.URL
		h.Events = events
		h.BatchMaxEvents = 1000
		eng, err := webhook.New(b.Server, webhook.Options{Hooks: []webhook.Hook{h}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		r := run()
		eng.Close()
		last = eng.Stats()
		if last[0].Enqueued == 0 {
			t.Errorf("the webhook saw no events: %+v", last[0])
		}
		return r
	}
	for range rounds {
		none += run()
		cpuNone += perCPU
		published += withHook("message.published")
		cpuPublished += perCPU
		every += withHook() // published and delivered: two events a message
		cpuEvery += perCPU
	}
	n := float64(rounds)
	t.Logf("msgs/s: no webhook %.0f; message.published %.0f (ratio %.3f); every event %.0f (ratio %.3f); last round's hook: %+v",
		none/n, published/n, published/none, every/n, every/none, last[0])
	t.Logf("msgs per CPU second: no webhook %.0f; message.published %.0f (ratio %.3f); every event %.0f (ratio %.3f)",
		cpuNone/n, cpuPublished/n, cpuPublished/cpuNone, cpuEvery/n, cpuEvery/cpuNone)
}
