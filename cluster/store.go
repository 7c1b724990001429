package cluster

import (
	"errors"
	"fmt"
	"strings"

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
// replicas (asyncStored, with its sequence in the messages stream for a
// QoS 1/2 message that is not retained, as RouteSeq), or cannot (asyncFailed: no quorum, a timeout of
// StoreTimeout, a lost connection). Many messages are then in flight
// together, which JetStream replicates in batches, where Route stores one
// at a time.
func (c *Cluster) Store(p *packet.Publish, done func(uint64, error)) {
	msg, err := c.readyMsg(p)
	if err != nil {
		done(0, err)
		return
	}
	c.storeAsync(msg, p.Topic, done)
}

// readyMsg is p as the messages stream stores it, once JetStream is ready.
func (c *Cluster) readyMsg(p *packet.Publish) (*nats.Msg, error) {
	if !c.ready.Load() {
		return nil, ErrNotReady
	}
	data, err := encode(p)
	if err != nil {
		return nil, err
	}
	return c.storeMsg(p, data), nil
}

// storeAsync sends msg to its stream without waiting; done gets the
// outcome (asyncStored, asyncFailed).
func (c *Cluster) storeAsync(msg *nats.Msg, topicName string, done func(uint64, error)) {
	c.storeMu.Lock()
	if c.storeClosed {
		c.storeMu.Unlock()
		done(0, errClosed)
		return
	}
	c.storing[msg] = done
	c.storeMu.Unlock()
	if _, err := c.js.PublishMsgAsync(msg, jetstream.WithStallWait(StoreTimeout)); err != nil {
		c.complete(msg, 0, fmt.Errorf("cluster: store %q in JetStream: %w", topicName, err))
	}
}

// Forward implements broker.AsyncRouter: it sends a stored message live
// to the nodes with matching subscriptions, with seq, its sequence in the
// messages stream (0: none), as RouteSeq does.
func (c *Cluster) Forward(p *packet.Publish, seq uint64) error {
	if seq != 0 {
		defer c.forwarded(seq) // the broker delivers it here next
	}
	return c.forward(p, nil, seq) // forwarder.go
}

// asyncStored and asyncFailed receive the outcome of each Store from the
// JetStream client (on its goroutine for acknowledgements, or a timer's).
func (c *Cluster) asyncStored(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	var seq uint64
	if ack != nil && ack.Duplicate {
		// Its message identifier was stored before (StoreOnce): not
		// stored now, nothing to forward (storeonce.go).
		c.complete(m, ack.Sequence, errDuplicate)
		return
	}
	if ack != nil && strings.HasPrefix(m.Subject, c.prefix+"q.") {
		seq = ack.Sequence // the messages stream's, not the retained one's
		c.stored(seq)
	}
	c.complete(m, seq, nil)
}

func (c *Cluster) asyncFailed(_ jetstream.JetStream, m *nats.Msg, err error) {
	c.complete(m, 0, fmt.Errorf("cluster: store in JetStream: %w", err))
}

// complete calls the callback of a message being stored, once.
func (c *Cluster) complete(m *nats.Msg, seq uint64, err error) {
	c.storeMu.Lock()
	done := c.storing[m]
	delete(c.storing, m)
	c.storeMu.Unlock()
	if done != nil {
		done(seq, err)
	}
}

// failStoring refuses every message still being stored: the JetStream
// client drops its pending acknowledgements silently when its connection
// closes.
func (c *Cluster) failStoring() {
	c.storeMu.Lock()
	c.storeClosed = true
	pending := c.storing
	c.storing = make(map[*nats.Msg]func(uint64, error))
	c.storeMu.Unlock()
	for _, done := range pending {
		done(0, errClosed)
	}
}
