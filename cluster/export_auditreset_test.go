package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BlockAuditResets makes every node's audit consumer one that cannot be
// made again: for each (named PREFIX_N by nats.go's ordered consumer) it
// creates PREFIX_N+1, the name the ordered consumer's reset makes next,
// with a configuration the reset cannot update (deliver and ack policy),
// and then deletes the audit consumer. The reset's every try is refused,
// as when JetStream cannot make a consumer for long (no resources, a
// consumer limit, no meta leader). It returns how many it broke.
func (c *Cluster) BlockAuditResets() (int, error) {
	return c.eachAuditConsumer(func(ctx context.Context, st jetstream.Stream, name string) error {
		i := strings.LastIndexByte(name, '_')
		n, err := strconv.Atoi(name[i+1:])
		if i < 0 || err != nil {
			return fmt.Errorf("audit consumer %q: not named as nats.go's ordered consumers are", name)
		}
		if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Name:              fmt.Sprintf("%s_%d", name[:i], n+1),
			FilterSubject:     c.prefix + "q.>",
			DeliverPolicy:     jetstream.DeliverAllPolicy,
			AckPolicy:         jetstream.AckExplicitPolicy,
			MemoryStorage:     true,
			Replicas:          1,
			InactiveThreshold: time.Minute,
		}); err != nil {
			return err
		}
		return st.DeleteConsumer(ctx, name)
	})
}
