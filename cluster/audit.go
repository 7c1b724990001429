package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// The audit: no stored message is lost on the live path.
//
// Live routing rides core NATS, which delivers at most once: a route that
// is down, interest that has not reached the publishing node yet (right
// after a partition heals, or a new subscription), or this node's dispatch
// queue overflowing (a slow consumer) each drop messages without a trace.
// So each node also reads the messages stream with one ordered consumer,
// headers only (no payload): for every QoS 1/2 message stored by another
// node it learns the stream sequence, the topic (from the subject) and the
// publishing node. The audit goroutine keeps those that match one of this
// node's non-shared filters (subscribed before the message was stored) and
// puts them in the dispatch queue, behind every live message NATS had
// delivered to this node by then. The dispatch goroutine keeps a ledger of
// the sequences it delivered live: a sequence audited but not delivered
// live within FillGrace is a gap; the fill goroutine reads it from the
// stream by sequence (a direct get) and puts it in the dispatch queue,
// which delivers it unless a live copy came first. Each sequence is
// delivered once, whichever path brings it first. A live message of a
// topic with a gap before it waits for the gap (holdMax at most), so that
// the topic stays in order [MQTT-4.6.0-5].
//
// The ledger also gives the checkpoint (applied): the last audited
// sequence, or the one before the first gap not yet filled.
//
// What it costs: every node reads the headers of every QoS 1/2 message
// (about 100 bytes each) once; JetStream consumers: one more per node.
// Not covered: $share groups (a NATS queue group gives each message to
// one node, which the others cannot tell from a loss).

// FillGrace is how long a stored message that this node needs may take
// to arrive live, after the audit saw it, before it is read from the
// stream instead.
const FillGrace = time.Second

// fillTick is how often the fill goroutine asks the dispatch goroutine
// for the gaps that are due.
const fillTick = 100 * time.Millisecond

// auditSilence is how long the audit's consumer may deliver nothing
// before the audit asks the server whether it has fallen behind: a
// consumer deleted by the server (a leader change) or a pull request
// lost leaves it silent for good, and the client library's heartbeat
// check never fires while Next is called with a wait shorter than the
// heartbeat (as the audit does, every fillTick).
//
// Next may also not return at all: nats.go (v1.56.0 jetstream/ordered.go)
// makes an ordered consumer's new consumer inside Next, under the
// consumer's lock, retrying with a backoff of up to 10 s, each try waiting
// up to 10 s, MaxResetAttempts times (without end by default). So the
// audit reads through a goroutine of its own (readAudit) and checks a
// silence whether Next returns or not; it asks the stream, not the
// consumer, whose Info waits for that lock; and it bounds the resets
// (auditResetAttempts), making a new consumer itself after them.
const auditSilence = 2 * time.Second

// auditResetAttempts bounds the tries of the audit's ordered consumer to
// make its consumer again; past them Next fails, and the audit makes a
// new ordered consumer from the last sequence it audited.
const auditResetAttempts = 2

// errAuditStalled ends an audit consumer that is silent while the stream
// holds messages it has not delivered.
var errAuditStalled = errors.New("the audit's consumer delivers nothing while the stream holds messages after the last one audited")

// auditRead is what one call of the audit iterator's Next returned.
type auditRead struct {
	m   jetstream.Msg
	err error
}

// readAudit calls it.Next and hands each result to out, until Next fails
// other than by its wait ending, or quit is closed. Its own goroutine:
// the audit goes on checking while Next does not return (a reset of the
// ordered consumer under way); it does not wait for it to end.
func readAudit(it jetstream.MessagesContext, out chan<- auditRead, quit <-chan struct{}) {
	for {
		m, err := it.Next(jetstream.NextMaxWait(fillTick))
		select {
		case out <- auditRead{m, err}:
		case <-quit:
			return
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) {
			return
		}
	}
}

// gapKeep is how long a filled (or late) sequence is remembered, so that
// a copy arriving after it is not delivered again.
const gapKeep = time.Minute

// localKeep bounds how long a message stored by this node waits for
// Forward before the checkpoint stops waiting for it (Forward never comes
// for a message that expired meanwhile, or a connection that ended).
const localKeep = 15 * time.Second

// Sentinels: the dispatch queue's records that are not live messages.
var (
	auditSub = new(nats.Subscription) // an audited sequence (Subject set) or the audit's progress
	checkSub = new(nats.Subscription) // the fill goroutine asks for the gaps due
	fillSub  = new(nats.Subscription) // a gap read from the stream, or why not
)

// Headers of the dispatch queue's own records.
const (
	hdrCheck = "Gannet-Check" // checkSub: the time it was sent (Unix ns)
	hdrFill  = "Gannet-Fill"  // fillSub without a message: "lost" or "retry"
)

// interestFilter is one of this node's non-shared filters in the audit's
// trie, with the stream sequence known when it was subscribed: messages
// stored up to it are not this filter's.
type interestFilter struct {
	filter string
	since  uint64
}

// gapState is where an audited sequence this node needs stands.
type gapState uint8

const (
	gapWaiting  gapState = iota // not delivered yet
	gapFetching                 // being read from the stream
	gapDone                     // delivered (live or filled), or lost
)

type gap struct {
	seq   uint64
	tail  string    // its subject after the stream's prefix: the topic's
	at    time.Time // audited (or, after a failed read, that time)
	first time.Time // audited
	state gapState
	done  time.Time
}

// heldMsg is a live message held back behind a gap of its topic, so that
// the topic's messages reach subscribers in order.
type heldMsg struct {
	p   *packet.Publish
	seq uint64
}

// holdMax bounds how long a live message waits behind a gap of its topic
// (the stream cannot be read: no quorum).
const holdMax = 5 * FillGrace

// ledger is the dispatch goroutine's account of the stream sequences it
// delivered: owned by that goroutine.
type ledger struct {
	high   uint64              // every sequence up to it is audited
	seen   map[uint64]struct{} // delivered live, above high then
	gaps   map[uint64]*gap     // audited and needed, by sequence
	waits  []*gap              // the gaps not done, in order of sequence
	lost   uint64              // gaps no longer in the stream
	checks int                 // checks handled
	// tails lists, per topic (subject tail), the gaps not done in order
	// of sequence (some at the front may be done); held the live
	// messages of the topic held back behind them.
	tails map[string][]*gap
	held  map[string][]heldMsg
	// filled lists the gaps read from the stream (or lost), in the order
	// they were done, to forget them after gapKeep.
	filled []*gap
}

func newLedger(high uint64) *ledger {
	return &ledger{high: high, seen: make(map[uint64]struct{}), gaps: make(map[uint64]*gap),
		tails: make(map[string][]*gap), held: make(map[string][]heldMsg)}
}

// firstOpen returns the first gap of tail not done, or nil.
func (l *ledger) firstOpen(tail string) *gap {
	gs := l.tails[tail]
	for len(gs) > 0 && gs[0].state == gapDone {
		gs[0] = nil
		gs = gs[1:]
	}
	if len(gs) == 0 {
		delete(l.tails, tail)
		return nil
	}
	l.tails[tail] = gs
	return gs[0]
}

// hold keeps back a live message of tail with sequence seq if an earlier
// message of the topic is a gap not filled yet, and reports whether it
// did: it is delivered (release) once the gaps before it are done.
func (l *ledger) hold(tail string, p *packet.Publish, seq uint64) bool {
	if len(l.tails) == 0 {
		return false
	}
	g := l.firstOpen(tail)
	if g == nil || g.seq >= seq { // its own gap: it fills it
		return false
	}
	l.held[tail] = append(l.held[tail], heldMsg{p, seq})
	return true
}

// release delivers the held messages of tail that no gap precedes any
// more (all of them with force), in the order they arrived.
func (c *Cluster) release(l *ledger, tail string, ib broker.InboundBatch, force bool) {
	hs := l.held[tail]
	if len(hs) == 0 {
		return
	}
	g := l.firstOpen(tail)
	kept := hs[:0]
	for _, h := range hs {
		if force || g == nil || h.seq < g.seq {
			ib.DeliverSeq(h.p, "", "", h.seq)
			continue
		}
		kept = append(kept, h)
	}
	clear(hs[len(kept):])
	if len(kept) == 0 {
		delete(l.held, tail)
	} else {
		l.held[tail] = kept
	}
}

// applied is the checkpoint the ledger allows: every sequence up to it
// was delivered here or is not this node's.
func (l *ledger) applied() uint64 {
	for len(l.waits) > 0 && l.waits[0].state == gapDone {
		l.waits[0] = nil
		l.waits = l.waits[1:]
	}
	if len(l.waits) > 0 {
		return l.waits[0].seq - 1
	}
	return l.high
}

// streamHighAt raises c.streamHigh, the last stream sequence this node
// knows of, to seq.
func (c *Cluster) streamHighAt(seq uint64) {
	for {
		h := c.streamHigh.Load()
		if seq <= h || c.streamHigh.CompareAndSwap(h, seq) {
			return
		}
	}
}

// needs reports whether one of this node's non-shared filters subscribed
// before seq was stored matches topicName. Any goroutine; m is scratch.
func (c *Cluster) needs(topicName string, seq uint64, m *topic.Matches[*interestFilter]) bool {
	m.Reset()
	c.audited.Match(topicName, nil, nil, m)
	for _, d := range m.Deliveries {
		if d.Subscriber.since < seq {
			return true
		}
	}
	return false
}

// startAudit creates the audit's consumer from the sequence after from
// and starts the audit and fill goroutines.
func (c *Cluster) startAudit(ctx context.Context, st jetstream.Stream, from uint64) error {
	cons, err := c.auditConsumer(ctx, st, from)
	if err != nil {
		return err
	}
	c.wg.Add(2)
	go c.auditLoop(st, cons, from)
	go c.fillLoop(st)
	return nil
}

func (c *Cluster) auditConsumer(ctx context.Context, st jetstream.Stream, from uint64) (jetstream.Consumer, error) {
	return st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{c.prefix + "q.>"},
		DeliverPolicy:    jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:      from + 1,
		HeadersOnly:      true,
		MaxResetAttempts: auditResetAttempts,
	})
}

// auditLoop reads the messages stream's headers in order and puts into
// the dispatch queue each sequence this node needs, and its progress.
func (c *Cluster) auditLoop(st jetstream.Stream, cons jetstream.Consumer, high uint64) {
	defer c.wg.Done()
	var scratch topic.Matches[*interestFilter]
	pushed := high // the progress the dispatch goroutine was told
	lastPush := time.Now()
	push := func(m *nats.Msg) bool {
		select {
		case c.msgs <- m:
			lastPush = time.Now()
			return true
		case <-c.stop:
			return false
		}
	}
	progress := func() bool {
		if high == pushed {
			return true
		}
		m := &nats.Msg{Sub: auditSub, Header: nats.Header{}}
		m.Header.Set(hdrStreamSeq, strconv.FormatUint(high, 10))
		pushed = high
		return push(m)
	}
	tick := time.NewTicker(fillTick) // checks while Next does not return
	defer tick.Stop()
	for {
		it, err := cons.Messages(jetstream.PullMaxMessages(1024))
		if err != nil {
			c.log.Warn("cluster: cannot read the messages stream's headers: messages lost on the way to this node are not recovered until it can", "error", err)
		}
		reads, quit := make(chan auditRead), make(chan struct{})
		// done ends this iterator's reader without waiting for it: a
		// Stop waits for a reset under way (up to 10 s a try).
		done := func() {
			close(quit)
			go it.Stop()
		}
		if err == nil {
			go readAudit(it, reads, quit)
		}
		heard, checked := time.Now(), time.Now() // last delivery; last check of a silence
		for err == nil {
			var r auditRead
			select {
			case <-c.stop:
				done()
				return
			case r = <-reads:
			case <-tick.C:
				r.err = nats.ErrTimeout
			}
			jm := r.m
			if err = r.err; errors.Is(err, nats.ErrTimeout) {
				err = nil
				if !progress() {
					done()
					return
				}
				if time.Since(heard) >= auditSilence && time.Since(checked) >= auditSilence {
					checked = time.Now()
					err = c.auditStalled(st, high)
				}
				continue
			}
			if err != nil {
				break
			}
			heard = time.Now()
			md, merr := jm.Metadata()
			if merr != nil {
				continue
			}
			seq := md.Sequence.Stream
			c.streamHighAt(seq + md.NumPending)
			high = seq
			if h := jm.Headers(); h.Get(hdrOrigin) != c.origin {
				name, terr := SubjectTopic(strings.TrimPrefix(jm.Subject(), c.prefix+"q."))
				if terr == nil && c.needs(name, seq, &scratch) {
					m := &nats.Msg{Sub: auditSub, Subject: jm.Subject(), Header: nats.Header{}}
					m.Header.Set(hdrStreamSeq, strconv.FormatUint(seq, 10))
					pushed = seq
					if !push(m) {
						done()
						return
					}
					continue
				}
			}
			if time.Since(lastPush) >= 20*time.Millisecond && !progress() {
				done()
				return
			}
		}
		if it != nil {
			done()
		}
		select {
		case <-c.stop:
			return
		default:
		}
		c.log.Debug("cluster: the audit of the messages stream restarts", "after", high, "error", err)
		// The ordered consumer recovers by itself from most failures;
		// this is the rest: a new one from where this one was.
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(time.Second):
			}
			ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
			cons, err = c.auditConsumer(ctx, st, high)
			cancel()
			if err == nil {
				break
			}
		}
	}
}

// auditStalled asks the stream about the audit's consumer, silent for
// auditSilence with high the last sequence audited: errAuditStalled if
// the stream holds messages after high (the consumer's filter is the
// stream's subjects: it has messages it has not delivered, or delivered
// messages that never arrived, or is gone, or its Next does not return),
// so that the audit makes a new one from high; nil otherwise (nothing was
// stored meanwhile, or the stream cannot answer now: asked again after
// auditSilence). Not the consumer: its Info waits for the lock a reset
// under way holds.
func (c *Cluster) auditStalled(st jetstream.Stream, high uint64) error {
	ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil || info.State.LastSeq <= high {
		return nil
	}
	c.streamHighAt(info.State.LastSeq)
	c.log.Warn("cluster: the audit of the messages stream stopped receiving: starting it again from the last message audited (messages lost on the way to this node meanwhile are read from the stream then)", "after", high, "stream_last", info.State.LastSeq)
	return errAuditStalled
}

// fillLoop asks the dispatch goroutine for the gaps due every fillTick and
// reads them from the stream, in order.
func (c *Cluster) fillLoop(st jetstream.Stream) {
	defer c.wg.Done()
	tick := time.NewTicker(fillTick)
	defer tick.Stop()
	push := func(m *nats.Msg) bool {
		select {
		case c.msgs <- m:
			return true
		case <-c.stop:
			return false
		}
	}
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			if !c.checking.CompareAndSwap(false, true) {
				continue // the last one is still in the queue
			}
			m := &nats.Msg{Sub: checkSub, Header: nats.Header{}}
			m.Header.Set(hdrCheck, strconv.FormatInt(time.Now().UnixNano(), 10))
			if !push(m) {
				return
			}
		case seqs := <-c.due:
			for _, m := range c.fetch(st, seqs) {
				if !push(m) {
					return
				}
			}
		}
	}
}

// fetchers bounds the gaps read from the stream at once.
const fetchers = 8

// fetch reads the gaps seqs from the stream, a few at once, and returns
// the dispatch queue's records for them, in the order of seqs.
func (c *Cluster) fetch(st jetstream.Stream, seqs []uint64) []*nats.Msg {
	out := make([]*nats.Msg, len(seqs))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(fetchers, len(seqs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(seqs) {
					return
				}
				out[i] = c.fetchOne(st, seqs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func (c *Cluster) fetchOne(st jetstream.Stream, seq uint64) *nats.Msg {
	m := &nats.Msg{Sub: fillSub, Header: nats.Header{}}
	m.Header.Set(hdrStreamSeq, strconv.FormatUint(seq, 10))
	ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
	defer cancel()
	sm, err := st.GetMsg(ctx, seq)
	switch {
	case err == nil:
		m.Subject, m.Data = sm.Subject, sm.Data
	case errors.Is(err, jetstream.ErrMsgNotFound) && c.expired(ctx, st, seq):
		m.Header.Set(hdrFill, "lost")
	default:
		// A replica that lags (a direct get may be answered by any), no
		// quorum, a timeout: again after FillGrace.
		c.log.Debug("cluster: a message lost on the way to this node cannot be read from the stream yet", "seq", seq, "error", err)
		m.Header.Set(hdrFill, "retry")
	}
	return m
}

// expired reports whether the stream no longer holds seq (older than its
// first sequence, asked of its leader).
func (c *Cluster) expired(ctx context.Context, st jetstream.Stream, seq uint64) bool {
	info, err := st.Info(ctx)
	return err == nil && seq < info.State.FirstSeq
}

// dispatchAudit handles the audit's and the fill goroutine's records in
// the dispatch goroutine.
func (c *Cluster) dispatchAudit(m *nats.Msg, l *ledger, ib broker.InboundBatch) {
	now := time.Now()
	switch m.Sub {
	case auditSub:
		seq, err := strconv.ParseUint(m.Header.Get(hdrStreamSeq), 10, 64)
		if err != nil || seq <= l.high {
			return
		}
		l.high = seq
		if m.Subject == "" {
			break // progress only
		}
		if _, ok := l.seen[seq]; ok {
			delete(l.seen, seq) // it came live
			break
		}
		g := &gap{seq: seq, tail: strings.TrimPrefix(m.Subject, c.prefix+"q."), at: now, first: now}
		l.gaps[seq] = g
		l.waits = append(l.waits, g)
		l.tails[g.tail] = append(l.tails[g.tail], g)
		c.gapsFound.Add(1)
	case fillSub:
		seq, err := strconv.ParseUint(m.Header.Get(hdrStreamSeq), 10, 64)
		if err != nil {
			return
		}
		g := l.gaps[seq]
		if g == nil || g.state != gapFetching {
			return // it came live meanwhile
		}
		switch m.Header.Get(hdrFill) {
		case "retry":
			g.state, g.at = gapWaiting, now
			return
		case "lost":
			l.lost++
			c.log.Warn("cluster: a stored message never reached this node and is no longer in the messages stream: its subscribers here miss it", "seq", seq)
		default:
			if p, err := decode(m.Data); err != nil {
				c.log.Warn("cluster: unreadable message of the messages stream skipped", "seq", seq, "error", err)
			} else {
				c.filled.Add(1)
				ib.DeliverSeq(p, "", "", seq)
			}
		}
		g.state, g.done = gapDone, now
		l.filled = append(l.filled, g) // a late live copy is dropped until gapKeep
		c.release(l, g.tail, ib, false)
	case checkSub:
		c.checking.Store(false)
		at, _ := strconv.ParseInt(m.Header.Get(hdrCheck), 10, 64)
		c.dueGaps(l, time.Unix(0, at).Add(-FillGrace))
		for tail := range l.held {
			if g := l.firstOpen(tail); g == nil || now.Sub(g.first) > holdMax {
				c.release(l, tail, ib, true)
			}
		}
		c.pruneLedger(l, now)
	}
	c.applied.Store(l.applied())
}

// dueGaps hands the fill goroutine the gaps audited before cutoff that
// are still waiting. The fill goroutine's check has come through the
// dispatch queue: every live message that reached this node up to then
// has been dispatched.
func (c *Cluster) dueGaps(l *ledger, cutoff time.Time) {
	var seqs []uint64
	var gs []*gap
	for _, g := range l.waits {
		if g.state == gapWaiting && !g.at.After(cutoff) {
			seqs = append(seqs, g.seq)
			gs = append(gs, g)
		}
	}
	if len(seqs) == 0 {
		return
	}
	select {
	case c.due <- seqs:
		for _, g := range gs {
			g.state = gapFetching
		}
	default: // still reading the last ones: at the next check
	}
}

// pruneLedger forgets the gaps done long ago and the live sequences the
// audit has passed without needing them.
func (c *Cluster) pruneLedger(l *ledger, now time.Time) {
	for len(l.filled) > 0 && now.Sub(l.filled[0].done) > gapKeep {
		delete(l.gaps, l.filled[0].seq)
		l.filled[0] = nil
		l.filled = l.filled[1:]
	}
	// The audit removes what it needed; what it passed without needing
	// (a filter subscribed or unsubscribed meanwhile) goes now and then,
	// as do the topics whose gaps are all done.
	if l.checks++; l.checks%50 == 0 {
		for tail := range l.tails {
			l.firstOpen(tail)
		}
		for seq := range l.seen {
			if seq <= l.high {
				delete(l.seen, seq)
			}
		}
	}
	if len(l.waits) > 0 {
		kept := l.waits[:0]
		for _, g := range l.waits {
			if g.state != gapDone {
				kept = append(kept, g)
			}
		}
		clear(l.waits[len(kept):])
		l.waits = kept
	}
}

// liveSeq decides about a live message with stream sequence seq before
// the dispatch goroutine delivers it: false if it was delivered already
// (filled). After delivering it, the dispatch goroutine calls
// deliveredSeq.
func (l *ledger) liveSeq(seq uint64) bool {
	g := l.gaps[seq]
	return g == nil || g.state != gapDone
}

// It returns the gap the message was, if any (it came late).
func (l *ledger) deliveredSeq(seq uint64) *gap {
	if g := l.gaps[seq]; g != nil {
		// Late, not lost (the common case: the audit saw the message
		// before its live copy arrived). Nothing else brings it twice:
		// a read from the stream under way finds no gap and is dropped.
		delete(l.gaps, seq)
		if g.state != gapDone {
			g.state, g.done = gapDone, time.Now()
			return g
		}
		return nil
	}
	if seq > l.high {
		l.seen[seq] = struct{}{}
	}
	return nil
}

// stored records a QoS 1/2 message stored by this node until Forward
// hands it to the other nodes and the broker to its sessions: the
// checkpoint stays below it until then.
func (c *Cluster) stored(seq uint64) {
	c.streamHighAt(seq)
	c.localMu.Lock()
	c.local[seq] = time.Now()
	c.localMu.Unlock()
}

func (c *Cluster) forwarded(seq uint64) {
	c.localMu.Lock()
	delete(c.local, seq)
	c.localMu.Unlock()
}

// localApplied lowers cp below the messages this node stored and has not
// delivered yet.
func (c *Cluster) localApplied(cp uint64) uint64 {
	now := time.Now()
	c.localMu.Lock()
	defer c.localMu.Unlock()
	for seq, at := range c.local {
		if now.Sub(at) > localKeep {
			delete(c.local, seq)
			continue
		}
		if seq <= cp {
			cp = seq - 1
		}
	}
	return cp
}
