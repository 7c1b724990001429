package broker

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// BenchmarkTopicMetrics measures throughput (8 publisher/subscriber pairs,
// 64-byte QoS 0 messages, over loopback sockets) with no per-topic metric
// filters and with ten, each message matching two of them, in one run:
//
//	go test -run '^$' -bench BenchmarkTopicMetrics -benchtime 400000x -count 5 ./broker
func BenchmarkTopicMetrics(b *testing.B) {
	ten := []string{"bench/pair/#", "bench/pair/+", "sensors/#", "factory/+/alarm", "a/b/c", "x/#", "y/+/z", "$SYS/#", "home/#", "cars/+/speed"}
	for _, c := range []struct {
		name    string
		filters []string
	}{{"filters=0", nil}, {"filters=10", ten}} {
		b.Run(c.name, func(b *testing.B) {
			opts := DefaultOptions()
			opts.Logger = discardLogger()
			opts.WriteBufferLimit = 1 << 30
			opts.TopicMetrics = c.filters
			srv, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Close()
			relayPairs(b, l.Addr().String(), 8, 64)
			if c.filters != nil {
				if ts := srv.TopicStats(); ts[0].MessagesOut == 0 {
					b.Fatal("the per-topic counters counted nothing")
				}
			}
		})
	}
}

// relayPairs is benchRelay's pairs shape against addr.
func relayPairs(b *testing.B, addr string, pairs, size int) {
	subs := make([]*rawClient, pairs)
	pubs := make([]*rawClient, pairs)
	for i := range pairs {
		subs[i] = dialRaw(b, addr)
		subs[i].subscribe(b, fmt.Sprintf("bench/pair/%d", i), 0)
		pubs[i] = dialRaw(b, addr)
		go pubs[i].drain()
	}
	perPub := max(1, b.N/pairs)
	payload := make([]byte, size)
	batches := make([][]byte, pairs)
	for i := range pubs {
		var buf []byte
		for range perPub {
			p := &packet.Publish{Topic: fmt.Sprintf("bench/pair/%d", i), Payload: payload}
			buf, _ = p.Append(buf, packet.V311)
		}
		batches[i] = buf
	}
	var got atomic.Int64
	var done sync.WaitGroup
	for _, c := range subs {
		done.Add(1)
		go c.countPublishes(int64(perPub), &done, &got)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i, c := range pubs {
		go c.nc.Write(batches[i])
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		b.Fatalf("only %d of %d messages delivered", got.Load(), perPub*pairs)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
	for _, c := range append(subs, pubs...) {
		c.nc.Close()
	}
}

// BenchmarkTopicCounting is the CPU cost per message of the per-topic
// counters alone: finding the filters of a cached topic, counting it in and
// one copy out, with ten filters of which two match.
func BenchmarkTopicCounting(b *testing.B) {
	o := DefaultOptions()
	o.Logger = discardLogger()
	o.TopicMetrics = []string{"bench/pair/#", "bench/pair/+", "sensors/#", "factory/+/alarm", "a/b/c", "x/#", "y/+/z", "$SYS/#", "home/#", "cars/+/speed"}
	srv, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := newMessage(&packet.Publish{Topic: "bench/pair/1", Payload: make([]byte, 64)}, time.Now())
		for pb.Next() {
			m.tm = nil
			srv.countIn(m)
			m.countOut(0)
		}
	})
}
