package bridge_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/packet"
)

// TestBridgeThroughput measures bridge throughput, Gannet to Gannet and
// Mosquitto to Mosquitto in the same run, with 64-byte messages at QoS 0
// and 1: messages per second from the first publish on one broker to the
// last delivery on the other, and the p99 of publish-to-delivery latency.
// It is a measurement, run with GANNET_BENCH=1 (GANNET_BENCH_N sets the
// count, 20,000 by default):
//
//	GANNET_BENCH=1 go test -run TestBridgeThroughput -v ./bridge
func TestBridgeThroughput(t *testing.T) {
	if os.Getenv("GANNET_BENCH") == "" {
		t.Skip("a measurement: set GANNET_BENCH=1")
	}
	n := 20_000
	if s := os.Getenv("GANNET_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, qos := range []byte{0, 1} {
		local, remote := startGannet(t, false), startGannet(t, false)
		m := local.bridges(testBridge("bench", packet.V5, []bridge.Rule{{Pattern: "bench/#", QoS: qos}}, remote.Addr))
		waitState(t, m, "bench", bridge.StateConnected)
		g := measure(t, local.Addr, remote.Addr, qos, n)
		direct := measure(t, remote.Addr, remote.Addr, qos, n) // the clients' own ceiling, no bridge

		mqRemote := startMosquitto(t, "")
		mqLocal := startMosquitto(t, fmt.Sprintf("connection bench\naddress %s\ntopic bench/# out %d\ncleansession true\nnotifications false\n", mqRemote.Addr, qos))
		time.Sleep(500 * time.Millisecond) // Mosquitto's bridge connects in its own time
		mq := measure(t, mqLocal.Addr, mqRemote.Addr, qos, n)
		t.Logf("QoS %d, %d messages of 64 bytes: Gannet %s; Mosquitto %s; ratio %.2fx msgs/s (one Gannet, no bridge: %s)",
			qos, n, g, mq, g.rate/mq.rate, direct)
	}
}

type result struct {
	rate     float64
	p99      time.Duration
	received int
}

func (r result) String() string {
	return fmt.Sprintf("%.0f msgs/s, p99 %v, %d received", r.rate, r.p99.Round(time.Microsecond), r.received)
}

// measure publishes n 64-byte messages on a and receives them on b.
func measure(t *testing.T, a, b string, qos byte, n int) result {
	t.Helper()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	var last time.Time
	done := make(chan struct{})
	sub := connectPaho(t, b, nextID("bsub"), true, nil)
	tok := sub.Subscribe("bench/#", qos, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		ns, _ := strconv.ParseInt(strings.TrimLeft(string(m.Payload()[:20]), "0"), 10, 64)
		mu.Lock()
		lat = append(lat, now.Sub(time.Unix(0, ns)))
		last = now
		if len(lat) == n {
			close(done)
		}
		mu.Unlock()
	})
	tok.Wait()
	pub := connectPaho(t, a, nextID("bpub"), true, nil)
	pad := strings.Repeat("x", 44)
	start := time.Now()
	var ptok mqtt.Token
	for range n {
		ptok = pub.Publish("bench/x", qos, false, fmt.Sprintf("%020d%s", time.Now().UnixNano(), pad))
		if qos == 0 {
			ptok.Wait() // paho queues QoS 0 without bound otherwise
		}
	}
	ptok.Wait()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	r := result{received: len(lat)}
	if len(lat) == 0 {
		return r
	}
	r.rate = float64(len(lat)) / last.Sub(start).Seconds()
	slices.Sort(lat)
	r.p99 = lat[len(lat)*99/100]
	return r
}
