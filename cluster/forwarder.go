package cluster

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// forwarder collects the live messages published on this node into
// frames (frame.go), one per topic, and sends them to the other nodes.
// A QoS 0 message (retained or not) joins its topic's open frame and the
// flusher goroutine, woken by the first message of a round, sends every
// open frame: what the read loops route while the flusher waits for a CPU
// goes out together, so under load a frame carries many messages, and a
// lone message goes out at once. A QoS 1/2 message (numbered in the
// messages stream) goes out at once, with every open frame before it, in
// the publishing goroutine, as before frames: the audit counts it as
// forwarded when Forward returns (store.go).
//
// Order: every frame is numbered and sent under Cluster.pubMu, in the
// order its first message joined, and a frame holds its messages in the
// order they were published: so MQTT's order per publisher and topic
// [MQTT-4.6.0-5] holds, and a node receiving frames through several
// filters sees each origin's numbers grow (dispatchOne). Messages of
// different topics from one publisher may pass each other (a later frame
// of topic A can carry a message published after one of topic B's frame);
// MQTT orders messages per topic only.
type forwarder struct {
	// Guarded by Cluster.pubMu.
	frames map[string]*liveFrame // topic → its frame, open or idle
	open   []*liveFrame          // frames holding messages, in the order they opened
	bytes  int                   // bytes of messages in open frames
	kicked bool                  // the flusher was woken and has not taken the frames yet
	warned time.Time             // the last warning about a frame NATS refused

	kick chan struct{} // wakes the flusher goroutine
	// head is the start of every frame's head: frameMark and the origin;
	// room is how many bytes each frame keeps in front of its messages for
	// the head (head and the largest frame count).
	head []byte
	room int
	// maxPayload is the NATS server's largest message, as last read
	// (pubMu): a frame that would pass it goes out before.
	maxPayload int64

	sentFrames, sentMsgs atomic.Uint64 // what went out: for tests and profiles
	// gate, set by tests only, holds the flusher until it is closed.
	gate atomic.Pointer[chan struct{}]

	// The receiving side (dispatch goroutine only): inAvg is the mean
	// messages per live frame received, in sixteenths; shedWarned when
	// shedding was last reported. shed counts the QoS 0 messages dropped.
	inAvg      int
	shedWarned time.Time
	shed       atomic.Uint64
}

// liveFrame is one topic's frame.
type liveFrame struct {
	subject string
	buf     []byte // room bytes for the head, then the messages
	n       int    // messages in buf
}

func (f *forwarder) init(origin string) {
	f.frames = make(map[string]*liveFrame)
	f.kick = make(chan struct{}, 1)
	f.head = append([]byte{frameMark}, binary.AppendUvarint(nil, uint64(len(origin)))...)
	f.head = append(f.head, origin...)
	f.room = len(f.head) + binary.MaxVarintLen64
}

// putHead writes a frame's head, numbered seq, into the room at the
// front of buf, and returns where the frame starts.
func (f *forwarder) putHead(buf []byte, seq uint64) int {
	var tmp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(tmp[:], seq)
	start := f.room - k - len(f.head)
	copy(buf[start:], f.head)
	copy(buf[start+len(f.head):], tmp[:k])
	return start
}

// Frames returns how many live frames this node has sent, and how many
// messages they carried.
func (c *Cluster) Frames() (frames, messages uint64) {
	return c.fwd.sentFrames.Load(), c.fwd.sentMsgs.Load()
}

// forward sends a message published on this node live to the nodes with
// matching subscriptions: p encoded into its topic's frame, or data, its
// routed form (encode) when the caller has it, with seq, its sequence in
// the messages stream (0: not stored there), for the sessions that replay
// it. A QoS 0 message waits for the flusher goroutine; others go out with
// every open frame before this returns.
func (c *Cluster) forward(p *packet.Publish, data []byte, seq uint64) error {
	if c.nc.IsClosed() {
		return fmt.Errorf("cluster: route %q: %w", p.Topic, nats.ErrConnectionClosed)
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	fw := &c.fwd
	f := fw.frames[p.Topic]
	if f == nil {
		if len(fw.frames) >= liveIdleTopics {
			c.forgetIdleLocked()
		}
		f = &liveFrame{subject: c.prefix + "m." + TopicSubject(p.Topic), buf: make([]byte, fw.room, fw.room+256)}
		fw.frames[strings.Clone(p.Topic)] = f
	}
	before := len(f.buf)
	f.buf = binary.AppendUvarint(f.buf, seq)
	if data != nil {
		f.buf = append(f.buf, data...)
	} else {
		var err error
		if f.buf, err = appendRouted(f.buf, p); err != nil {
			f.buf = f.buf[:before]
			return fmt.Errorf("cluster: encode %q: %w", p.Topic, err)
		}
	}
	if f.n == 0 {
		fw.open = append(fw.open, f)
	}
	f.n++
	fw.bytes += len(f.buf) - before
	if f.n > 1 && int64(len(f.buf)) > fw.maxPayload {
		// Too large together: the frames before it go first, and it
		// goes alone.
		msg := append([]byte(nil), f.buf[before:]...)
		f.buf = f.buf[:before]
		f.n--
		fw.bytes -= len(msg)
		err := c.flushLocked()
		f.buf = append(f.buf, msg...)
		f.n = 1
		fw.open = append(fw.open, f)
		fw.bytes += len(msg)
		if ferr := c.flushLocked(); err == nil {
			err = ferr
		}
		return err
	}
	if seq != 0 || p.QoS > 0 || fw.bytes >= liveFrameLimit {
		return c.flushLocked()
	}
	if !fw.kicked {
		fw.kicked = true
		select {
		case fw.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// forgetIdleLocked forgets the frames of the topics that have none open.
// pubMu held.
func (c *Cluster) forgetIdleLocked() {
	fw := &c.fwd
	for t, f := range fw.frames {
		if f.n == 0 {
			delete(fw.frames, t)
		}
	}
}

// flushLocked numbers and sends every open frame, in the order they
// opened. It returns the first error NATS gave. pubMu held.
func (c *Cluster) flushLocked() error {
	fw := &c.fwd
	var first error
	for i, f := range fw.open {
		c.seq++
		start := fw.putHead(f.buf, c.seq)
		if err := c.nc.Publish(f.subject, f.buf[start:]); err != nil && first == nil {
			first = fmt.Errorf("cluster: route %d messages on subject %q: %w", f.n, f.subject, err)
		}
		fw.sentFrames.Add(1)
		fw.sentMsgs.Add(uint64(f.n))
		f.n = 0
		if cap(f.buf) > liveKeepBuffer && (len(fw.frames) > liveFewTopics || cap(f.buf) > 2*liveFrameLimit) {
			f.buf = make([]byte, fw.room, fw.room+256) // a busy round or a large message passed: do not keep its room
		} else {
			f.buf = f.buf[:fw.room]
		}
		fw.open[i] = nil
	}
	fw.open = fw.open[:0]
	fw.bytes = 0
	return first
}

// flusher sends the open frames each time a QoS 0 message opens a round,
// and what is left when the cluster closes.
func (c *Cluster) flusher() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			c.pubMu.Lock()
			c.flushLocked()
			c.pubMu.Unlock()
			return
		case <-c.fwd.kick:
		}
		if g := c.fwd.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-c.stop:
			}
		}
		c.pubMu.Lock()
		c.fwd.kicked = false
		c.fwd.maxPayload = c.nc.MaxPayload() // another server's after a reconnection
		err := c.flushLocked()
		warn := err != nil && time.Since(c.fwd.warned) > liveReportEvery
		if warn {
			c.fwd.warned = time.Now()
		}
		c.pubMu.Unlock()
		if warn {
			c.log.Warn("cluster: NATS refused live messages: QoS 0 messages for other nodes are lost (QoS 1/2 ones are read from the messages stream there)", "error", err)
		}
	}
}

// dispatchFrame delivers the messages of a live frame that arrived on
// subject, through share/filter for a queue subscription. dec decodes the
// QoS 0 ones in place. Dispatch goroutine.
//
// The dispatch queue holds frames, not messages: when the frames waiting
// hold more messages than the queue has places (as far as the mean
// frame tells), this node is behind, and it drops the QoS 0 messages of
// the frame, as NATS drops the messages that find the queue full (QoS 1/2
// ones go on: a lost one would be read from the messages stream). So
// frames do not make a node that cannot keep up queue more messages, and
// wait longer, than it did when each message was a NATS message.
func (c *Cluster) dispatchFrame(subject string, rest []byte, share, filter string, dec *packet.Decoder, l *ledger, ib broker.InboundBatch) {
	fw := &c.fwd
	shedding := len(c.msgs)*fw.inAvg/16 > cap(c.msgs)
	n, shed := 0, 0
	defer func() {
		fw.inAvg += (n*16 - fw.inAvg) / 8
		if shed > 0 {
			fw.shed.Add(uint64(shed))
			if time.Since(fw.shedWarned) > liveReportEvery {
				fw.shedWarned = time.Now()
				c.log.Warn("cluster: this node is behind with the messages from other nodes: QoS 0 ones dropped (more messages than its CPUs can deliver?)", "dropped", fw.shed.Load())
			}
		}
	}()
	for len(rest) > 0 {
		n++
		if shedding && rest[0] == 0 { // QoS 0 (stream sequence 0): skipped undecoded
			total, _, err := packet.Header(rest[1:], 0)
			if err != nil || total == 0 || total > len(rest)-1 {
				c.log.Warn("cluster: unreadable message from another node skipped, with the rest of its frame", "subject", subject)
				return
			}
			rest = rest[1+total:]
			shed++
			continue
		}
		d := dec
		if rest[0] != 0 { // a stream sequence: the ledger may keep p (audit.go)
			d = &packet.Decoder{Version: packet.V5}
		}
		p, seq, next, _, err := nextPacket(d, rest)
		if err != nil {
			c.log.Warn("cluster: unreadable message from another node skipped, with the rest of its frame", "subject", subject, "error", err)
			return
		}
		rest = next
		c.deliverLive(p, seq, subject, share, filter, l, ib)
	}
}
