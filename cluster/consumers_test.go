package cluster_test

import (
	"context"
	"fmt"
	"testing"
)

// JetStream consumers are bounded by the nodes, not by the sessions or
// subscriptions (issue 12: "a few per node ..., never one per MQTT
// subscription or session"): 60 persistent sessions with 180 distinct
// subscriptions spread over three nodes leave the count where it was.
func TestConsumersBoundedBySessions(t *testing.T) {
	nodes := three(t)
	count := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		n, err := nodes[0].cl.Consumers(ctx)
		if err != nil {
			t.Fatalf("counting JetStream consumers: %v", err)
		}
		return n
	}
	base := count()
	for i := range 60 {
		c := pahoClient(t, nodes[i%3].addr, fmt.Sprintf("bounded-%d", i), false)
		for j := range 3 {
			subscribe(t, c, fmt.Sprintf("bounded/%d/%d/#", i, j), byte(1+j%2))
		}
	}
	// Short-lived consumers (a session loaded or replayed) may come and
	// go meanwhile; what stays must not grow with the sessions.
	var n int
	eventually(t, "the consumer count back near its level before the sessions", func() bool {
		n = count()
		return n <= base+3
	})
	t.Logf("%d JetStream consumers with 3 nodes before, %d with 60 persistent sessions and 180 subscriptions", base, n)
}
