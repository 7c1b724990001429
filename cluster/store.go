package cluster

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/packet"
)

// maxStoring bounds the messages this node has sent to JetStream and not
// yet seen acknowledged; Store waits for room (up to StoreTimeout) past it.
const maxStoring = 16384

// errClosed refuses the messages still being stored when the node leaves.
var errClosed = errors.New("cluster: the node is leaving the cluster")

// Store implements broker.AsyncRouter: it sends p to its stream without
// waiting, and calls done once JetStream has it with a majority of its
// replicas (asyncStored), or cannot (asyncFailed: no quorum, a timeout of
// StoreTimeout, a lost connection). Many messages are then in flight
// together, which JetStream replicates in batches, where Route stores one
// at a time.
func (c *Cluster) Store(p *packet.Publish, done func(error)) {
	if !c.ready.Load() {
		done(ErrNotReady)
		return
	}
	data, err := encode(p)
	if err != nil {
		done(err)
		return
	}
	msg := &nats.Msg{Subject: c.storeSubject(p), Data: data}
	c.storeMu.Lock()
	if c.storeClosed {
		c.storeMu.Unlock()
		done(errClosed)
		return
	}
	c.storing[msg] = done
	c.storeMu.Unlock()
	if _, err := c.js.PublishMsgAsync(msg, jetstream.WithStallWait(StoreTimeout)); err != nil {
		c.complete(msg, fmt.Errorf("cluster: store %q in JetStream: %w", p.Topic, err))
	}
}

// Forward implements broker.AsyncRouter: it sends a stored message live
// to the nodes with matching subscriptions.
func (c *Cluster) Forward(p *packet.Publish) error {
	data, err := encode(p)
	if err != nil {
		return err
	}
	return c.forward(p.Topic, data)
}

// asyncStored and asyncFailed receive the outcome of each Store from the
// JetStream client (on its goroutine for acknowledgements, or a timer's).
func (c *Cluster) asyncStored(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	c.complete(m, nil)
}

func (c *Cluster) asyncFailed(_ jetstream.JetStream, m *nats.Msg, err error) {
	c.complete(m, fmt.Errorf("cluster: store in JetStream: %w", err))
}

// complete calls the callback of a message being stored, once.
func (c *Cluster) complete(m *nats.Msg, err error) {
	c.storeMu.Lock()
	done := c.storing[m]
	delete(c.storing, m)
	c.storeMu.Unlock()
	if done != nil {
		done(err)
	}
}

// failStoring refuses every message still being stored: the JetStream
// client drops its pending acknowledgements silently when its connection
// closes.
func (c *Cluster) failStoring() {
	c.storeMu.Lock()
	c.storeClosed = true
	pending := c.storing
	c.storing = make(map[*nats.Msg]func(error))
	c.storeMu.Unlock()
	for _, done := range pending {
		done(errClosed)
	}
}
