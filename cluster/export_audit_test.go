package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PauseAuditConsumers pauses, on the server, every node's audit consumer
// of the messages stream (the headers-only ones) for d: each stays, with
// its pull requests, and delivers nothing, as one whose pull request was
// lost on a route going down does. It returns how many it paused.
func (c *Cluster) PauseAuditConsumers(d time.Duration) (int, error) {
	return c.eachAuditConsumer(func(ctx context.Context, st jetstream.Stream, name string) error {
		_, err := st.PauseConsumer(ctx, name, time.Now().Add(d))
		return err
	})
}

// DeleteAuditConsumers deletes, on the server, every node's audit
// consumer of the messages stream (the headers-only ones), as a leader
// change or a server restart can, and returns how many it deleted.
func (c *Cluster) DeleteAuditConsumers() (int, error) {
	return c.eachAuditConsumer(func(ctx context.Context, st jetstream.Stream, name string) error {
		return st.DeleteConsumer(ctx, name)
	})
}

func (c *Cluster) eachAuditConsumer(do func(context.Context, jetstream.Stream, string) error) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, c.messageStream())
	if err != nil {
		return 0, err
	}
	var names []string
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.HeadersOnly {
			names = append(names, ci.Name)
		}
	}
	if err := l.Err(); err != nil {
		return 0, err
	}
	for _, name := range names {
		if err := do(ctx, st, name); err != nil {
			return 0, err
		}
	}
	return len(names), nil
}
