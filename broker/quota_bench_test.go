package broker_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// BenchmarkRetainedFlood measures what one anonymous client storing 1 MB
// retained messages costs (issue 16, point 3): GANNET_RETAINED_N messages
// (default 400), each on its own topic. GANNET_RETAINED_NOCAP=1 lifts the
// retained caps (the old default). b.N is ignored.
//
//	go test -run '^$' -bench RetainedFlood -benchtime 1x ./broker
func BenchmarkRetainedFlood(b *testing.B) {
	n := 400
	if s := os.Getenv("GANNET_RETAINED_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	opts := testOptions()
	if os.Getenv("GANNET_RETAINED_NOCAP") != "" {
		opts.MaxRetained, opts.MaxRetainedBytes, opts.MaxRetainedPerUser, opts.MaxRetainedBytesPerUser = 0, 0, 0, 0
	}
	br := runBroker(b, opts)
	c := client(b, br, "flood")
	payload := make([]byte, 1_000_000)
	h0 := heapNow()
	t0 := time.Now()
	for i := range n {
		p := &packet.Publish{Topic: fmt.Sprintf("flood/%d", i), Payload: payload, QoS: 1, Retain: true, PacketID: uint16(i + 1)}
		c.send(p)
		expectPacket[*packet.Puback](c)
	}
	st := br.Stats()
	b.Logf("%d x 1 MB retained from one anonymous client: %d stored, %d refused, heap %+.0f MiB, %v",
		n, st.Retained, st.DroppedRetained, (float64(heapNow())-float64(h0))/(1<<20), time.Since(t0))
}
