package broker

import "sync"

// Writing without a goroutine per write. A packet queued on a connection
// nobody is writing to is written at once, by the goroutine that queued it,
// with a write that does not wait (write_unix.go); only what the socket
// does not take at once goes to the flusher goroutine (conn.flush). So a
// quiet connection costs no goroutine start per packet, and the latency of
// a single message is one write.
//
// Under load, writes are batched instead: while a read loop handles the
// packets of one read (conn.process), the connections it queues packets on
// (its own acknowledgements, and the subscribers of what it routes) are
// written at the end of that read. A read of one packet is a quiet one:
// they are written at once. A read of several is a busy one: they go to
// their flushers, which run once the read loops now runnable have queued
// what they have too, so that each write carries as much as it can.

// batch is the set of connections a read loop has queued packets on during
// one read, written at its end. Its lock is a leaf: taken with a conn's
// wmu (and session and server locks) held, never the other way round.
type batch struct {
	mu     sync.Mutex
	active bool    // the read loop is inside process
	conns  []*conn // to write at the end of the read; each has deferred set
}

// startBatch begins deferring writes to the end of this read.
func (c *conn) startBatch() {
	c.batch.mu.Lock()
	c.batch.active = true
	c.batch.mu.Unlock()
}

// endBatch stops deferring and writes every connection deferred meanwhile:
// at once after a quiet read, by their flushers after a busy one.
func (c *conn) endBatch(quiet bool) { c.batch.end(quiet) }

// end stops deferring and writes every connection deferred meanwhile: at
// once when quiet (one packet handled), by their flushers otherwise. The
// read loop's batch and the cluster's drains (clusterpub.go) end this way.
func (b *batch) end(quiet bool) {
	b.mu.Lock()
	b.active = false
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for i, t := range conns {
		t.wmu.Lock()
		t.deferred = false
		if len(t.out) > 0 && !t.flushing && !t.closing {
			if quiet {
				t.writeLocked()
			} else {
				t.flushing = true
				go t.flush()
			}
		}
		t.wmu.Unlock()
		conns[i] = nil
	}
	if cap(conns) <= 64 {
		b.mu.Lock()
		if b.conns == nil {
			b.conns = conns[:0] // reuse the slice for the next read
		}
		b.mu.Unlock()
	}
}

// flushBatch writes what the read so far deferred, before the read loop
// waits (for a rate, the memory ceiling, the store): other clients need
// not wait with it. A no-op outside process.
func (c *conn) flushBatch() {
	c.batch.mu.Lock()
	active := c.batch.active
	c.batch.mu.Unlock()
	if active {
		c.endBatch(true)
		c.startBatch()
	}
}

// deferTo adds c to b if b's read is in progress, so that the write
// happens at its end. c.wmu held.
func (c *conn) deferTo(b *batch) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.active {
		return false
	}
	b.conns = append(b.conns, c)
	c.deferred = true
	return true
}

// kickLocked sees that the write buffer is written: at the end of the
// read of via (the read loop that routed the packet, nil when none) or of
// this connection's own read loop if one is in progress, or at once.
// wmu held.
func (c *conn) kickLocked(via *batch) {
	if c.flushing || c.deferred {
		return // the flusher, or the end of a read, writes it
	}
	if via != nil && c.deferTo(via) {
		return
	}
	if c.deferTo(&c.batch) {
		return
	}
	c.writeLocked()
}

// kickNowLocked writes the buffer now, even if a read's end would write it:
// a closing connection's last packet must be out before the socket closes.
// wmu held.
func (c *conn) kickNowLocked() {
	if !c.flushing && len(c.out) > 0 {
		c.writeLocked()
	}
}

// writeLocked writes what it can of the buffer without waiting and hands
// the rest, if any, to the flusher. wmu held; not flushing.
func (c *conn) writeLocked() {
	if c.raw != nil && !c.syncWrites.Load() && !c.sessSyncPending() {
		n, ok := tryWrite(c.raw, c.out)
		c.srv.stats.bytesOut.Add(uint64(n))
		if ok && n == len(c.out) {
			putBuf(c.out)
			c.out = nil
			return
		}
		if ok && n > 0 {
			c.out = c.out[:copy(c.out, c.out[n:])]
		}
		// Not all taken, or an error: the flusher writes the rest or
		// meets the error again and closes the connection.
	}
	c.flushing = true
	go c.flush()
}
