package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
)

// TestBridgeQueueMaxBytes: with the remote away, the bridge's outgoing
// queue holds messages up to queue_max_bytes exactly (each counted as
// topic + payload + 128 bytes); the next one, the newest, is dropped and
// counted; once the remote is back the ones kept arrive, in order, and the
// dropped one does not.
func TestBridgeQueueMaxBytes(t *testing.T) {
	const cost = int64(128 + len("q/x") + len("p0")) // one message
	for _, c := range []struct {
		name string
		max  int64
		kept int
	}{
		{"at the edge", 3 * cost, 3},
		{"one byte short", 3*cost - 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			local, remote := startGannet(t, true), startGannet(t, true)
			cfg := testBridge("b", 4, []bridge.Rule{{Pattern: "q/#", Direction: bridge.Out, QoS: 1}}, remote.Addr)
			cfg.QueueMaxBytes = c.max
			m := local.bridges(cfg)
			waitState(t, m, "b", bridge.StateConnected)
			ch := make(chan msg, 100)
			sc := persistentSub(t, remote.Addr, "collector", "q/#", ch)
			sc.Disconnect(50)
			remote.stop()
			waitState(t, m, "b", bridge.StateDisconnected)

			for i := range 4 {
				publish(t, local.Addr, "q/x", fmt.Sprint("p", i), 1, false)
			}
			eventually(t, "the queue at its cap", func() bool {
				in := bridgeInfo(m, "b")
				return in.Queued == c.kept && in.Dropped == uint64(4-c.kept)
			})

			remote.start()
			persistentSub(t, remote.Addr, "collector", "q/#", ch)
			for i := range c.kept {
				select {
				case got := <-ch:
					if got.Payload != fmt.Sprint("p", i) {
						t.Fatalf("message %d is %q, want p%d", i, got.Payload, i)
					}
				case <-time.After(waitFor):
					t.Fatalf("only %d of %d kept messages arrived", i, c.kept)
				}
			}
			select {
			case got := <-ch:
				t.Fatalf("a message over the cap arrived: %+v", got)
			case <-time.After(quiet):
			}
			if in := bridgeInfo(m, "b"); in.Dropped != uint64(4-c.kept) {
				t.Fatalf("dropped %d, want %d", in.Dropped, 4-c.kept)
			}
		})
	}
}
