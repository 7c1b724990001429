package broker

import (
	"errors"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// AsyncRouter is implemented by a Cluster that stores messages without
// holding up the publisher's read loop: the read loop starts storing a
// QoS 1/2 or retained message and goes on reading, and the message is
// delivered and acknowledged once the cluster confirms it (clusterpub.go).
// Without it, Cluster.Route stores each such message before the read
// loop goes on: one round trip to the cluster per message.
type AsyncRouter interface {
	// Store starts storing p, a QoS 1/2 or retained message published on
	// this node, and returns without waiting for it. done is called
	// exactly once, from any goroutine (maybe before Store returns), with
	// nil once the cluster has stored the message, or the error that
	// refuses the publisher. With nil, seq is the sequence number the
	// cluster stored a QoS 1/2 message with, as SequencedRouter.RouteSeq
	// returns it (0 if it numbers none). Store must not be called with a
	// lock held that done takes. p is only valid during the call.
	Store(p *packet.Publish, done func(seq uint64, err error))
	// Forward sends p, stored by Store with sequence seq, live to the
	// other nodes, as Route does after storing. The broker calls it, for
	// the messages of one connection, in the order they were received. p
	// is only valid during the call.
	Forward(p *packet.Publish, seq uint64) error
}

// storeWindow bounds a connection's messages being stored by the cluster
// at once; the read loop waits for room past it.
const storeWindow = 1024

// storeDrainLimit bounds how long a connection that ends waits for its
// messages being stored (the cluster refuses them after its own timeout).
const storeDrainLimit = 10 * time.Second

// pubPipe is a connection's queue of QoS 1/2 and retained messages being
// stored by the cluster, and of the acknowledgements queued behind them.
// Entries complete in any order; they are delivered and acknowledged in
// the order they were received, from the head: PUBACK and PUBREC go out in
// the order of the PUBLISH packets [MQTT-4.6.0-2] [MQTT-4.6.0-3], and the
// messages of one publisher reach subscribers in order [MQTT-4.6.0-6].
//
// Lock order: pubPipe.mu comes before Server.retainMu (a completed
// retained message is published under it), so nothing that holds a broker
// lock may take it; the read loop takes it with no lock held.
type pubPipe struct {
	mu      sync.Mutex
	cond    sync.Cond    // signalled when an entry leaves q
	q       []*pipeEntry // q[head:] are queued, in the order received
	head    int
	stores  int                     // entries of q being stored (not done)
	freed   []uint16                // QoS 2 identifiers refused: the read loop frees them in c.quota2
	matches topic.Matches[*session] // routing scratch of the completions
	acks    []ackLater              // scratch of drain
	b       batch                   // connections a drain wrote to, written at its end
	ar      AsyncRouter
}

// pipeEntry is a message being stored (m set) or an acknowledgement only.
type pipeEntry struct {
	m    *message
	ack  ackLater // qos 0: no acknowledgement
	dup  bool     // a resent QoS 2 PUBLISH: PUBREC only
	seq  uint64   // the cluster's sequence number of the stored message
	done bool
	err  error
}

// storeAsync starts storing m, received in p, through the cluster, if the
// cluster stores asynchronously and m needs storing; the rest of the
// PUBLISH's handling (delivery, the inbound QoS 2 identifier, the
// acknowledgement) then happens when the store completes. It reports
// whether it took m. Read loop only.
func (c *conn) storeAsync(m *message, p *packet.Publish) bool {
	ar, ok := c.srv.cluster.(AsyncRouter)
	if !ok || (m.qos == 0 && !m.retain) || !routed(m.topic) {
		return false
	}
	q := c.clusterPublish(m)
	if q == nil {
		return false // expired already: handled at once, as Route would
	}
	pp := c.pubPipe(ar)
	e := &pipeEntry{m: m}
	if p.QoS > 0 {
		e.ack = ackLater{id: p.PacketID, qos: p.QoS}
	}
	pp.mu.Lock()
	for pp.stores >= storeWindow {
		// Full: what this read routed goes out before the wait.
		pp.mu.Unlock()
		c.flushBatch()
		pp.mu.Lock()
		for pp.stores >= storeWindow {
			pp.cond.Wait()
		}
	}
	pp.q = append(pp.q, e)
	pp.stores++
	pp.mu.Unlock()
	c.storeOnce(ar, q, p, func(seq uint64, err error) { c.stored(pp, e, seq, err) }) // clusteronce.go
	return true
}

// clusterPublish returns the packet the cluster is given for m, with what
// is left of its expiry interval [MQTT-3.3.2-6]; nil if m has expired.
func (c *conn) clusterPublish(m *message) *packet.Publish {
	p := &packet.Publish{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Properties: m.props}
	if !m.expiry.IsZero() {
		left := time.Until(m.expiry)
		if left <= 0 {
			return nil
		}
		p.Properties.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
	}
	return p
}

// pubPipe returns the connection's pipe, made on first use. Read loop only.
func (c *conn) pubPipe(ar AsyncRouter) *pubPipe {
	if c.pipe == nil {
		pp := &pubPipe{ar: ar}
		pp.cond.L = &pp.mu
		c.pipe = pp
		c.pipeRef.Store(pp)
	}
	return c.pipe
}

// pipeAck queues an acknowledgement behind the messages being stored, if
// there are any or have been on this connection: it reports false when
// the connection has no pipe. Read loop only.
func (c *conn) pipeAck(id uint16, qos byte, rc packet.ReasonCode, dup bool) bool {
	pp := c.pipe
	if pp == nil {
		return false
	}
	pp.mu.Lock()
	pp.q = append(pp.q, &pipeEntry{ack: ackLater{id: id, qos: qos, rc: rc}, dup: dup, done: true})
	pp.mu.Unlock()
	return true
}

// storing reports whether messages are being stored by the cluster. Any
// goroutine.
func (pp *pubPipe) storing() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.stores > 0
}

// stored records the outcome of storing e and completes what the head of
// the queue allows. Any goroutine (the cluster's).
func (c *conn) stored(pp *pubPipe, e *pipeEntry, seq uint64, err error) {
	pp.mu.Lock()
	e.done, e.seq, e.err = true, seq, err
	pp.stores--
	c.drainLocked(pp, true)
	pp.cond.Broadcast()
	pp.mu.Unlock()
}

// drainPipe sends what the head of the pipe allows: at the end of each
// read, for the acknowledgements queued by the read loop itself.
func (c *conn) drainPipe() {
	pp := c.pipe
	pp.mu.Lock()
	c.drainLocked(pp, false)
	pp.mu.Unlock()
}

// takeFreed hands the read loop the QoS 2 identifiers whose PUBLISH the
// cluster refused, to free them in its receive quota. Read loop only.
func (c *conn) takeFreed() {
	pp := c.pipe
	if pp == nil {
		return
	}
	pp.mu.Lock()
	for _, id := range pp.freed {
		delete(c.quota2, id)
	}
	pp.freed = pp.freed[:0]
	pp.mu.Unlock()
}

// drainLocked completes the entries at the head of the queue that are
// done, in order: a stored message is sent to the other nodes and
// delivered here, a refused one refused; then the acknowledgements go out
// together, after one sync of the store if it has one. async (a store's
// completion, one of many arriving one by one under load) leaves the
// writes to the connections' flushers, which then carry what the
// completions queued meanwhile, where a write at once would be one system
// call per acknowledgement. pp.mu held.
func (c *conn) drainLocked(pp *pubPipe, async bool) {
	acks := pp.acks[:0]
	var inbound []int // acks whose inbound QoS 2 identifier was recorded
	n := 0
	retained := false
	pp.b.mu.Lock()
	pp.b.active = true
	pp.b.mu.Unlock()
	defer func() { pp.b.end(!async && n <= 1) }()
	for ; pp.head+n < len(pp.q) && pp.q[pp.head+n].done; n++ {
		e := pp.q[pp.head+n]
		pp.q[pp.head+n] = nil
		a := e.ack
		retained = retained || (e.m != nil && e.m.retain && e.err == nil)
		switch {
		case e.m == nil:
			if e.dup && a.qos == 2 && c.version >= packet.V5 {
				// The first copy was refused meanwhile: so is this one.
				c.sess.mu.Lock()
				if _, ok := c.sess.inbound2[a.id]; !ok {
					a.rc = packet.UnspecifiedError
				}
				c.sess.mu.Unlock()
			}
		case errors.Is(e.err, ErrStoredBefore) && a.qos == 2:
			// A resend of a message stored by a node that died before
			// it recorded the identifier: delivered from there, only
			// acknowledged here, its identifier recorded as for a new
			// one [MQTT-4.3.3-10] (clusteronce.go).
			c.sess.mu.Lock()
			if _, ok := c.sess.inbound2[a.id]; ok {
				c.sess.inboundLocked(a.id, true)
				inbound = append(inbound, len(acks))
			}
			c.sess.mu.Unlock()
		case e.err != nil:
			c.srv.log.Warn("cluster refused a message: the publisher is not acknowledged", "client", c.clientID, "topic", e.m.topic, "qos", e.m.qos, "error", e.err)
			if a.qos == 0 {
				continue // nothing to refuse: dropped, as QoS 0 may be
			}
			if a.qos == 2 {
				// The identifier is free again [MQTT-4.3.3-9]: a 3.1.1
				// publisher resends the PUBLISH after reconnecting, a new
				// message then, not a duplicate of one never stored
				// [MQTT-4.3.3-2].
				pp.freed = append(pp.freed, a.id)
				c.sess.mu.Lock()
				delete(c.sess.inbound2, a.id)
				c.sess.inboundLocked(a.id, false)
				c.sess.mu.Unlock()
			}
			if c.version < packet.V5 {
				// 3.1.1 cannot refuse a PUBLISH: closing is how it says no.
				c.srv.log.Info("closing connection: the cluster could not take a message", "client", c.clientID, "remote", c.nc.RemoteAddr())
				c.closeWith(nil)
				continue
			}
			a.rc = packet.UnspecifiedError
		default:
			// Numbered before it goes anywhere: the local sessions keep
			// the number as the other nodes' do (SequencedRouter).
			e.m.cseq = e.seq
			if q := c.clusterPublish(e.m); q != nil { // not if it expired meanwhile
				if err := pp.ar.Forward(q, e.seq); err != nil {
					c.srv.log.Warn("cluster: a stored message did not reach the other nodes live", "client", c.clientID, "topic", e.m.topic, "error", err)
				}
			}
			e.m.via.Store(&pp.b)
			delivered := c.srv.publishLocal(e.m, c.sess, &pp.matches)
			e.m.via.Store(nil)
			if delivered == quotaRefused {
				c.srv.log.Info("retained PUBLISH refused: over the retained message quota", "client", c.clientID, "topic", e.m.topic, "owner", e.m.owner)
				a.rc = packet.QuotaExceeded // 5.0 3.4.2.1
				if a.qos == 2 {
					pp.freed = append(pp.freed, a.id)
					c.sess.mu.Lock()
					delete(c.sess.inbound2, a.id)
					c.sess.inboundLocked(a.id, false)
					c.sess.mu.Unlock()
				}
			} else if a.qos == 2 {
				// Stored after the deliveries it guards (see handlePublish);
				// unless a PUBREL already released it.
				c.sess.mu.Lock()
				if _, ok := c.sess.inbound2[a.id]; ok {
					c.sess.inboundLocked(a.id, true)
					inbound = append(inbound, len(acks))
				}
				c.sess.mu.Unlock()
			}
		}
		if a.qos > 0 {
			acks = append(acks, a)
		}
	}
	if n == 0 {
		return
	}
	// Taken from the front: the array is reused once the queue is empty,
	// and compacted when what was taken is most of it.
	pp.head += n
	switch {
	case pp.head == len(pp.q):
		pp.q, pp.head = pp.q[:0], 0
	case pp.head >= 64 && 2*pp.head >= len(pp.q):
		k := copy(pp.q, pp.q[pp.head:])
		clear(pp.q[k:])
		pp.q, pp.head = pp.q[:k], 0
	}
	if len(acks) > 0 || retained {
		c.srv.syncStore() // what the deliveries wrote is durable before the acknowledgements
	}
	if len(inbound) > 0 && !c.inboundStored() { // sessionsync.go
		if c.version < packet.V5 {
			// 3.1.1 cannot refuse a PUBLISH: closing is how it says no
			// (the identifier stays known here for the resent PUBLISH).
			c.srv.log.Info("closing connection: a QoS 2 identifier could not be stored", "client", c.clientID, "remote", c.nc.RemoteAddr())
			c.closeWith(nil)
			acks = acks[:0]
			inbound = nil
		}
		c.sess.mu.Lock()
		for _, i := range inbound {
			// Not received as far as another node knows: the identifier
			// is free again [MQTT-4.3.3-9], and the PUBREC says so.
			a := &acks[i]
			a.rc = packet.UnspecifiedError
			pp.freed = append(pp.freed, a.id)
			delete(c.sess.inbound2, a.id)
			c.sess.inboundLocked(a.id, false)
		}
		c.sess.mu.Unlock()
	}
	if len(acks) > 0 {
		for _, a := range acks {
			if a.qos == 1 {
				c.sendPacketVia(&packet.Puback{PacketID: a.id, ReasonCode: a.rc}, &pp.b) // [MQTT-4.3.2-4]
			} else {
				c.sendPacketVia(&packet.Pubrec{PacketID: a.id, ReasonCode: a.rc}, &pp.b) // [MQTT-4.3.3-8]
			}
		}
	}
	pp.acks = acks[:0]
}

// InboundBatcher is implemented by the Inbound the broker gives a
// Cluster: messages from other nodes delivered through one batch are
// written to each subscriber's connection together when the batch is
// flushed, one write per connection instead of one per message.
type InboundBatcher interface {
	NewBatch() InboundBatch
}

// InboundBatch delivers as Inbound.Deliver and Inbound.DeliverSeq do;
// Flush writes what it queued. One goroutine uses a batch at a time; flush
// before waiting.
type InboundBatch interface {
	Deliver(p *packet.Publish, share, filter string)
	DeliverSeq(p *packet.Publish, share, filter string, seq uint64)
	Flush()
}

// NewBatch implements InboundBatcher.
func (in inbound) NewBatch() InboundBatch { return &remoteBatch{s: in.s} }

// remoteBatch is an InboundBatch.
type remoteBatch struct {
	s       *Server
	b       batch
	n       int
	matches topic.Matches[*session]
}

func (rb *remoteBatch) Deliver(p *packet.Publish, share, filter string) {
	rb.DeliverSeq(p, share, filter, 0)
}

func (rb *remoteBatch) DeliverSeq(p *packet.Publish, share, filter string, seq uint64) {
	if rb.n == 0 {
		rb.b.mu.Lock()
		rb.b.active = true
		rb.b.mu.Unlock()
	}
	rb.n++
	rb.s.deliverRemoteVia(p, share, filter, seq, &rb.matches, &rb.b)
}

func (rb *remoteBatch) Flush() {
	if rb.n == 0 {
		return
	}
	rb.b.end(rb.n <= 1)
	rb.n = 0
}

// waitStores waits, when the connection ends, until the messages it was
// storing are delivered or refused, so that the session and the will go
// on only once nothing of this connection is still in flight. Read loop.
func (c *conn) waitStores() {
	pp := c.pipe
	if pp == nil {
		return
	}
	t := time.AfterFunc(storeDrainLimit, func() {
		pp.mu.Lock()
		pp.cond.Broadcast()
		pp.mu.Unlock()
	})
	defer t.Stop()
	deadline := time.Now().Add(storeDrainLimit)
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for pp.stores > 0 {
		if time.Now().After(deadline) {
			c.srv.log.Warn("connection ended with messages the cluster has not confirmed", "client", c.clientID, "pending", pp.stores)
			return
		}
		pp.cond.Wait()
	}
	c.drainLocked(pp, false)
}
