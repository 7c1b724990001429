package broker_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// heapNow returns the live Go heap after a collection.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// probeRTT publishes QoS 1 messages (retained ones with retain) every 10ms
// from its own connection until stop, and returns the PUBACK round trips.
func probeRTT(b testing.TB, addr, id string, retain bool, stop <-chan struct{}) (wait func() []time.Duration) {
	c := client(b, &testBroker{Addr: addr}, id)
	var rtts []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			t0 := time.Now()
			p := &packet.Publish{Topic: "probe/" + id, Payload: []byte("x"), QoS: 1, Retain: retain, PacketID: uint16(i%60000 + 1)}
			if c.write(c.encode(p)) != nil {
				return
			}
			if _, err := c.read(30 * time.Second); err != nil {
				return
			}
			rtts = append(rtts, time.Since(t0))
		}
	}()
	return func() []time.Duration { <-done; return rtts }
}

func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	slices.Sort(d)
	return fmt.Sprintf("p50 %v p99 %v max %v (%d samples)", d[len(d)/2], d[len(d)*99/100], d[len(d)-1], len(d))
}

// BenchmarkDeepTopicAttack measures what deep topics cost (issue 16, point
// 2): heap growth from SUBSCRIBE packets of about 1 MB holding filters of
// 65,000 levels, then from filters at the level limit, then from 100
// retained messages with 65,000-level topics, with other clients' QoS 1
// and retained-publish round trips meanwhile. GANNET_MAX_TOPIC_LEVELS sets
// the limit (0: none, the old default). b.N is ignored.
//
//	go test -run '^$' -bench DeepTopicAttack -benchtime 1x ./broker
func BenchmarkDeepTopicAttack(b *testing.B) {
	opts := testOptions()
	if s := os.Getenv("GANNET_MAX_TOPIC_LEVELS"); s != "" {
		opts.MaxTopicLevels, _ = strconv.Atoi(s)
	}
	br := runBroker(b, opts)
	stop := make(chan struct{})
	var stopOnce sync.Once
	defer stopOnce.Do(func() { close(stop) })
	rtt := probeRTT(b, br.Addr, "rtt", false, stop)
	rrtt := probeRTT(b, br.Addr, "rrtt", true, stop)
	time.Sleep(200 * time.Millisecond)

	deep := func(i int) string { return strconv.Itoa(i) + strings.Repeat("/", 64999-len(strconv.Itoa(i))+1) }
	attack := func(name string, packets, perPacket int, filter func(i int) string) {
		c := client(b, br, "attacker-"+name)
		h0 := heapNow()
		t0 := time.Now()
		refused, granted := 0, 0
		for p := range packets {
			subs := make([]packet.Subscription, perPacket)
			for i := range subs {
				subs[i] = packet.Subscription{Filter: filter(p*perPacket + i), QoS: 0}
			}
			for _, rc := range c.subscribe(subs...) {
				if rc == packet.UnspecifiedError {
					refused++
				} else {
					granted++
				}
			}
		}
		h1 := heapNow()
		grow := (float64(h1) - float64(h0)) / (1 << 20)
		b.Logf("%s: %d SUBSCRIBE packets, %d filters granted, %d refused, heap %+.1f MiB (%.1f MiB per packet), %v",
			name, packets, granted, refused, grow, grow/float64(packets), time.Since(t0))
	}
	attack("65000-levels", 6, 15, deep)
	lim := opts.MaxTopicLevels
	if lim == 0 {
		lim = 200
	}
	atLimit := func(i int) string { return levels(strconv.Itoa(i), lim) }
	attack(fmt.Sprintf("%d-levels", lim), 6, (1<<20-100)/(len(atLimit(99999))+3), atLimit)

	c := client(b, br, "retainer")
	h0 := heapNow()
	stored := 0
	for i := range 100 {
		p := &packet.Publish{Topic: deep(i), Payload: []byte("x"), QoS: 1, Retain: true, PacketID: uint16(i + 1)}
		if c.write(c.encode(p)) != nil {
			break
		}
		if _, err := c.read(30 * time.Second); err != nil {
			break // refused: the connection is closed
		}
		stored++
	}
	b.Logf("retained 65000-level topics: %d stored, heap %+.1f MiB, %d retained in all", stored, (float64(heapNow())-float64(h0))/(1<<20), br.Stats().Retained)
	stopOnce.Do(func() { close(stop) })
	b.Logf("other client's QoS 1 PUBACK round trip: %s", summary(rtt()))
	b.Logf("other client's retained QoS 1 PUBACK round trip: %s", summary(rrtt()))
}
