package cluster

import (
	"context"
	"errors"

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
	go func() {
		defer c.wg.Done()
		defer w.Stop()
		for {
			select {
			case <-c.stop:
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					c.ownerChanged(e)
				}
			}
		}
	}()
	return nil
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
		c.in.TakeOver(id)
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
