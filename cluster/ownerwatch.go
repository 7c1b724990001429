package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watchOwners makes this node end its connection of a client identifier
// that another node claimed without reaching it: the previous owner's
// takeover request is lost when the nodes are partitioned (the claim
// succeeds on the majority side, the request cannot reach the minority),
// and the minority node would keep its connection once the partition
// heals. Each node watches the owners bucket (one consumer per node) and
// gives up the identifiers it sees claimed by another node after its own
// claim, so that one identifier never has two live connections for longer
// than the partition [MQTT-3.1.4-3].
func (c *Cluster) watchOwners(owners jetstream.KeyValue) error {
	w, err := owners.WatchAll(context.Background(), jetstream.UpdatesOnly())
	if err != nil {
		return err
	}
	c.wg.Add(1)
	go c.ownerWatchLoop(owners, w)
	return nil
}

// ownerWatchLoop reads the owners bucket's updates until the cluster
// closes. nats.go ends a watch for good when it cannot re-create the
// watch's consumer with an error it does not retry (as can happen on the
// minority side of a partition): the watch is then made again, from the
// revision after the last one seen (or the whole bucket if none was), so
// that a claim made while it was down is still seen once the partition
// heals. ownerChanged ignores entries older than this node's own claim.
func (c *Cluster) ownerWatchLoop(owners jetstream.KeyValue, w jetstream.KeyWatcher) {
	defer c.wg.Done()
	var last uint64
	for {
		for open := true; open; {
			select {
			case <-c.stop:
				w.Stop()
				return
			case e, ok := <-w.Updates():
				if !ok {
					open = false
					continue
				}
				if e != nil {
					last = max(last, e.Revision())
					c.ownerChanged(e)
				}
			}
		}
		w.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			opts := []jetstream.WatchOpt{jetstream.IncludeHistory()}
			if last > 0 {
				opts = append(opts, jetstream.ResumeFromRevision(last+1))
			}
			nw, err := owners.WatchAll(context.Background(), opts...)
			if err == nil {
				c.log.Info("cluster: watching the owners bucket again after its watch ended", "from_revision", last+1)
				w = nw
				break
			}
			c.log.Debug("cluster: the owners bucket cannot be watched yet; retrying", "error", err)
		}
	}
}

// ownerChanged takes the connection of an identifier over when another
// node wrote the owners bucket after this node's claim.
func (c *Cluster) ownerChanged(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut || string(e.Value()) == c.origin {
		return
	}
	id, err := ownerID(e.Key())
	if err != nil {
		return
	}
	c.mu.Lock()
	rev, ok := c.owned[id]
	lost := ok && rev < e.Revision()
	if lost {
		delete(c.owned, id)
	}
	c.mu.Unlock()
	if lost {
		c.log.Info("cluster: another node claimed a client identifier this node was serving: its connection here is taken over", "client", id, "owner", string(e.Value()))
		// The new owner read the session without asking this node: what
		// this node still had queued for it would overwrite the new
		// owner's writes. Dropped (takeover.go).
		c.dropClaimed(id)
	}
}

var errOwnerKey = errors.New("cluster: not an owners bucket key")

// ownerID is the inverse of ownerKey.
func ownerID(key string) (string, error) {
	if len(key) < 2 || key[0] != 'c' {
		return "", errOwnerKey
	}
	tok := key[1:]
	if tok == "=" {
		return "", nil
	}
	dst := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		b := tok[i]
		if b != '=' {
			dst = append(dst, b)
			continue
		}
		if i+2 >= len(tok) {
			return "", errOwnerKey
		}
		h, l := unhex(tok[i+1]), unhex(tok[i+2])
		if h < 0 || l < 0 {
			return "", errOwnerKey
		}
		dst = append(dst, byte(h<<4|l))
		i += 2
	}
	return string(dst), nil
}
