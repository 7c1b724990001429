package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bench"
	"github.com/gannet-mqtt/gannet/webhook"
)

// TestThroughputWithWebhooks measures messages per second through one
// broker with a webhook on every event (each message published and
// delivered) against none, in one run, alternating the two. By default a
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

	run := func() float64 {
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
		return r.Messages.ReceivedPerSecond
	}
	var none, hooked float64
	var last []webhook.Stats
	for range rounds {
		none += run()
		h := webhook.DefaultHook()
		h.URL = rcv.URL
		eng, err := webhook.New(b.Server, webhook.Options{Hooks: []webhook.Hook{h}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		hooked += run()
		eng.Close()
		last = eng.Stats()
	}
	if last[0].Enqueued == 0 {
		t.Errorf("the webhook saw no events: %+v", last[0])
	}
	t.Logf("msgs/s without webhooks %.0f, with a webhook on every event %.0f: ratio %.3f (last round's hook: %+v)",
		none/float64(rounds), hooked/float64(rounds), hooked/none, last[0])
}
