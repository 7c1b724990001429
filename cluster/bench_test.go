package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bench"
)

// benchCrossNode runs gannet bench against the shared three-node cluster:
// publishers on the first node, their subscribers on the second, so every
// message crosses nodes (and at QoS 1 is stored in JetStream, R3, first).
// Profile with: go test -run '^$' -bench CrossNode -cpuprofile cpu.out ./cluster
func benchCrossNode(b *testing.B, qos byte, shape bench.Shape, clients int) {
	nodes := three(b)
	cfg := bench.DefaultConfig()
	cfg.Scenario = bench.PubSub
	cfg.Shape = shape
	cfg.Addr = nodes[0].addr
	cfg.SubAddr = nodes[1].addr
	cfg.QoS = qos
	cfg.Clients = clients
	cfg.Window = 100
	cfg.Topic = "benchx/%i"
	cfg.ClientIDPrefix = "benchx-"
	pubs := clients
	if shape == bench.FanOut {
		pubs = 1
	}
	cfg.Count = max(b.N/pubs, 1)
	cfg.Duration = time.Minute
	cfg.Drain = 10 * time.Second
	frames0, msgs0 := nodes[0].cl.Frames()
	b.ResetTimer()
	r, err := bench.Run(context.Background(), cfg, nil)
	b.StopTimer()
	if frames, msgs := nodes[0].cl.Frames(); frames > frames0 {
		b.ReportMetric(float64(msgs-msgs0)/float64(frames-frames0), "msgs/frame")
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Messages.SentPerSecond, "sent/s")
	b.ReportMetric(r.Messages.ReceivedPerSecond, "recv/s")
	if r.Latency != nil {
		b.ReportMetric(float64(r.Latency.P50)/1e6, "p50-ms")
		b.ReportMetric(float64(r.Latency.P99)/1e6, "p99-ms")
	}
}

func BenchmarkCrossNodeQoS0Pairs(b *testing.B)  { benchCrossNode(b, 0, bench.Pairs, 4) }
func BenchmarkCrossNodeQoS1Pairs(b *testing.B)  { benchCrossNode(b, 1, bench.Pairs, 4) }
func BenchmarkCrossNodeQoS0FanOut(b *testing.B) { benchCrossNode(b, 0, bench.FanOut, 8) }
