package cluster

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// WillKept reports whether the wills bucket holds a will of clientID (true
// also when it cannot be read now: ask again).
func (c *Cluster) WillKept(clientID string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	_, err := c.wills.Get(ctx, ownerKey(clientID))
	return !errors.Is(err, jetstream.ErrKeyNotFound)
}
