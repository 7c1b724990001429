package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// quietEnd ends the drain early when nothing has arrived for this long:
// QoS 0 messages the broker dropped never will.
const quietEnd = time.Second

// stallLimit is how long publishers may take to finish their last write
// once told to stop.
const stallLimit = 2 * time.Second

// engine is one run: its clients, their shared measurements, and the
// phases that drive them.
type engine struct {
	cfg     Config
	dialers []*net.Dialer

	clients []*client // subscribers first, then publishers; or connections
	pubs    []*client
	subs    []*client

	errs        errorCounts
	latency     shardedHistogram // end to end, from the payload timestamp
	ackLatency  shardedHistogram // PUBLISH to PUBACK or PUBCOMP
	connLatency shardedHistogram // dial to CONNACK

	attempted      atomic.Int64 // connections dialled
	sessionPresent atomic.Int64 // CONNACKs with Session Present 1
	initial        *Connections // a Reconnect run's first connection phase
	memory         *Memory      // a MemoryTopic run's figures
	open           atomic.Int64 // connections established and not lost
	firstRecv      atomic.Int64 // unix nanoseconds of the first PUBLISH received
	// staleBefore: a PubSub run ignores messages stamped before it began,
	// which an overloaded broker may still deliver from an earlier run on
	// the same topics. Set before any client starts.
	staleBefore int64

	// Phase times, set by run.
	setupStart, setupEnd time.Time
	start, pubEnd        time.Time // publishing (Pub, PubSub) or listening/holding
	openAtEnd            int64
	end                  time.Time
	cpuStart, cpuEnd     time.Duration // the process's CPU time at the start and end of run
	readers              sync.WaitGroup
}

// Run runs the scenario cfg describes and returns its report. When
// progress is not nil a status line is written to it every second, each
// starting with a carriage return; Run clears it before returning.
// Cancelling ctx ends the run early, still with a report of what was done.
// The error is nil, a configuration error (no report), or, with a report,
// ErrNoConnection.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg}
	if err := e.build(); err != nil {
		return nil, err
	}
	if progress != nil {
		stop := e.startProgress(progress)
		defer stop()
	}
	e.run(ctx)
	r := e.report()
	if r.Connections.Established == 0 {
		return r, fmt.Errorf("%w to %s", ErrNoConnection, cfg.brokerName())
	}
	return r, nil
}

// build creates the dialers and clients and pre-encodes the publishes.
func (e *engine) build() error {
	cfg := &e.cfg
	if len(cfg.Bind) == 0 {
		e.dialers = []*net.Dialer{{}}
	}
	for _, b := range cfg.Bind {
		e.dialers = append(e.dialers, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(b)}})
	}
	newClient := func(r role, i int) *client {
		c := &client{e: e, role: r, index: i, id: cfg.ClientIDPrefix + string(r) + strconv.Itoa(i)}
		e.clients = append(e.clients, c)
		return c
	}
	if cfg.Scenario == Conn {
		for i := range cfg.Clients {
			newClient(roleConn, i)
		}
		return nil
	}
	pubs, subs := cfg.counts()
	for i := range subs {
		e.subs = append(e.subs, newClient(roleSub, i))
	}
	for i := range pubs {
		c := newClient(rolePub, i)
		if err := c.prepare(); err != nil {
			return err
		}
		e.pubs = append(e.pubs, c)
	}
	return nil
}

// run connects the clients, runs the scenario's phase (hold, listen, or
// publish then drain) and tears down.
func (e *engine) run(ctx context.Context) {
	e.cpuStart = cpuTime()
	defer func() { e.cpuEnd, e.end = cpuTime(), time.Now() }()
	e.staleBefore = math.MinInt64
	if e.cfg.Scenario == PubSub || e.cfg.Scenario == PingPong {
		e.staleBefore = time.Now().UnixNano()
	}
	var mw *memWatch
	if e.cfg.MemoryTopic != "" {
		var err error
		if mw, err = e.watchMemory(ctx); err != nil {
			e.errs.add("memory: " + err.Error())
		} else {
			defer mw.close()
			v, _ := mw.fresh(0, 0)
			e.memory = &Memory{Topic: e.cfg.MemoryTopic, Before: v}
		}
	}
	e.connectAll(ctx)
	defer e.teardown()
	if ctx.Err() != nil {
		e.start, e.pubEnd, e.openAtEnd = time.Now(), time.Now(), e.open.Load()
		return
	}
	cfg := &e.cfg
	e.start = time.Now()
	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	switch cfg.Scenario {
	case Conn:
		held := 0
		if mw != nil {
			held = mw.updateCount()
		}
		if cfg.Duration > 0 {
			select {
			case <-deadline:
			case <-ctx.Done():
			}
		}
		e.pubEnd = time.Now()
		if mw != nil {
			// The second figure after the connections were made is
			// surely taken with all of them; a broker that publishes only
			// what changed (Mosquitto) may send none: its last stands.
			v, ok := mw.fresh(held+1, 3*time.Second)
			if !ok {
				v, ok = mw.fresh(0, 0)
			}
			if ok {
				e.memory.After = v
				if n := e.open.Load(); n > 0 {
					e.memory.PerConnection = (float64(v) - float64(e.memory.Before)) / float64(n)
				}
			} else {
				e.errs.add("memory: " + errNoMemoryFigure.Error())
			}
		}
		if cfg.Reconnect && ctx.Err() == nil {
			e.initial = e.reconnect(ctx)
		}
	case Sub:
		e.wait(ctx, deadline, func() bool {
			if cfg.Count == 0 {
				return false
			}
			for _, c := range e.subs {
				if c.ready.Load() && !c.lost.Load() && c.received.Load() < uint64(cfg.Count) {
					return false
				}
			}
			return true
		})
		e.pubEnd = time.Now()
	case Pub, PubSub:
		e.publishPhase(ctx, deadline)
		e.drain(ctx)
	case PingPong:
		e.pingPong(ctx, deadline)
		e.pubEnd = time.Now()
	}
	e.openAtEnd = e.open.Load()
}

// connectAll connects every client at cfg.ConnRate, ConnConcurrency at a
// time, and starts the read loop of each that connects.
func (e *engine) connectAll(ctx context.Context) {
	cfg := &e.cfg
	sem := make(chan struct{}, cfg.ConnConcurrency)
	var wg sync.WaitGroup
	e.setupStart = time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
loop:
	for i, c := range e.clients {
		if cfg.ConnRate > 0 {
			at := e.setupStart.Add(time.Duration(float64(i) / cfg.ConnRate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		e.attempted.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if c.setup(ctx, e.dialers[i%len(e.dialers)]) {
				e.open.Add(1)
				if cfg.Scenario == PingPong {
					return // pingPong reads both connections itself
				}
				e.readers.Add(1)
				go func() {
					defer e.readers.Done()
					c.readLoop()
				}()
			}
		}()
	}
	wg.Wait()
	e.setupEnd = time.Now()
}

// publishPhase runs the publishers until the deadline, their count or ctx.
func (e *engine) publishPhase(ctx context.Context, deadline <-chan time.Time) {
	cfg := &e.cfg
	stop := make(chan struct{})
	var wg sync.WaitGroup
	rate := cfg.perClientRate()
	for _, c := range e.pubs {
		if !c.ready.Load() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.publish(e.start, rate, cfg.Count, stop)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-deadline:
	case <-ctx.Done():
	}
	close(stop)
	select {
	case <-finished:
	case <-time.After(stallLimit):
		// A publisher is stuck in a write the broker has not read for
		// stallLimit: unblock it, which breaks its connection.
		for _, c := range e.pubs {
			if c.ready.Load() {
				c.stalled.Store(true)
				c.nc.SetWriteDeadline(time.Now())
			}
		}
		<-finished
	}
	e.pubEnd = time.Now()
}

// drain waits, after publishing, for the messages and acknowledgements
// still on their way: until everything expected has arrived, nothing has
// arrived for quietEnd, cfg.Drain has passed, or ctx is done.
func (e *engine) drain(ctx context.Context) {
	if e.cfg.Drain == 0 {
		return
	}
	t := time.NewTimer(e.cfg.Drain)
	defer t.Stop()
	var last uint64
	lastChange := time.Now()
	e.wait(ctx, t.C, func() bool {
		m := e.messages()
		if m.Received >= m.Expected && m.Acked >= m.awaitingAck {
			return true
		}
		if now := m.Received + m.Acked; now != last {
			last, lastChange = now, time.Now()
		}
		return time.Since(lastChange) >= quietEnd
	})
}

// wait polls done every 10ms until it holds, deadline fires or ctx ends.
func (e *engine) wait(ctx context.Context, deadline <-chan time.Time, done func() bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-tick.C:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// teardown disconnects every client and waits for the read loops to end.
// A client whose connection is already lost is only closed; a DISCONNECT
// that cannot be written within half a second is given up.
func (e *engine) teardown() {
	work := make(chan *client)
	var wg sync.WaitGroup
	disconnect, _ := (&packet.Disconnect{}).Append(nil, e.cfg.Version)
	for range min(64, len(e.clients)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.closing.Store(true)
				if !c.lost.Load() {
					c.nc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
					c.nc.Write(disconnect)
				}
				c.nc.Close()
			}
		}()
	}
	for _, c := range e.clients {
		if c.ready.Load() {
			work <- c
		}
	}
	close(work)
	wg.Wait()
	e.readers.Wait()
}

// messages sums the message counters of every client.
func (e *engine) messages() msgTotals {
	var m msgTotals
	var subscribed uint64
	for _, c := range e.subs {
		if c.ready.Load() {
			subscribed++
		}
		m.Received += c.received.Load()
		m.NoTimestamp += c.noTimestamp.Load()
		m.Stale += c.stale.Load()
	}
	for i, c := range e.pubs {
		sent := c.sent.Load()
		m.Sent += sent
		m.Acked += c.acked.Load()
		if c.win != nil && !c.lost.Load() {
			m.awaitingAck += sent
		}
		if e.cfg.Scenario == PingPong {
			m.Expected += sent
		}
		if e.cfg.Scenario != PubSub {
			continue
		}
		switch {
		case e.cfg.Shape != Pairs:
			m.Expected += sent * subscribed
		case i < len(e.subs) && e.subs[i].ready.Load():
			m.Expected += sent
		}
	}
	return m
}

type msgTotals struct {
	Sent, Acked, Received, Expected, NoTimestamp, Stale uint64
	awaitingAck                                         uint64 // sent by publishers still connected at QoS 1 or 2
}

// shardedHistogram is a histogram split in shards, each under its own
// lock, so that many read loops record without contending. A client
// always records into the shard its index picks, in batches: one lock per
// read, not per message.
type shardedHistogram struct {
	once   sync.Once
	shards []histShard
}

type histShard struct {
	mu sync.Mutex
	h  *Histogram // allocated on first use
	_  [48]byte   // keep shards on separate cache lines
}

func (s *shardedHistogram) shard(key int) *histShard {
	s.once.Do(func() { s.shards = make([]histShard, 2*runtime.GOMAXPROCS(0)) })
	return &s.shards[key%len(s.shards)]
}

func (s *shardedHistogram) record(key int, v int64) {
	sh := s.shard(key)
	sh.mu.Lock()
	if sh.h == nil {
		sh.h = new(Histogram)
	}
	sh.h.Record(v)
	sh.mu.Unlock()
}

func (s *shardedHistogram) recordAll(key int, vs []int64) {
	sh := s.shard(key)
	sh.mu.Lock()
	if sh.h == nil {
		sh.h = new(Histogram)
	}
	for _, v := range vs {
		sh.h.Record(v)
	}
	sh.mu.Unlock()
}

// merged returns the sum of the shards.
func (s *shardedHistogram) merged() *Histogram {
	var h Histogram
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.h != nil {
			h.Merge(sh.h)
		}
		sh.mu.Unlock()
	}
	return &h
}
