package bench

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// reconnect is the reconnect storm of a Conn run with Config.Reconnect:
// every connection is cut at once, as a network failure cuts them (no
// DISCONNECT, so the broker learns of it by its own means), and every
// client connects again at once, ConnConcurrency at a time. It returns the
// first connection phase; the engine's counters then describe the storm.
func (e *engine) reconnect(ctx context.Context) *Connections {
	first := e.connSummary()
	for _, c := range e.clients {
		if c.ready.Load() {
			c.closing.Store(true)
			c.nc.Close()
		}
	}
	e.readers.Wait()
	for _, c := range e.clients {
		c.ready.Store(false)
		c.lost.Store(false)
		c.closing.Store(false)
		c.have = 0
	}
	e.attempted.Store(0)
	e.open.Store(0)
	e.sessionPresent.Store(0)
	e.connLatency = shardedHistogram{}
	e.connectAll(ctx)
	return &first
}

// connSummary describes the last connection phase.
func (e *engine) connSummary() Connections {
	var cs Connections
	cs.Attempted = int(e.attempted.Load())
	for _, c := range e.clients {
		if c.ready.Load() {
			cs.Established++
			if c.lost.Load() {
				cs.Lost++
			}
		}
	}
	cs.Failed = cs.Attempted - cs.Established
	cs.OpenAtEnd = int(e.open.Load())
	cs.Setup = e.setupEnd.Sub(e.setupStart)
	if cs.Setup > 0 {
		cs.PerSecond = float64(cs.Established) / cs.Setup.Seconds()
	}
	cs.SessionPresent = int(e.sessionPresent.Load())
	cs.Latency = e.connLatency.merged().Summary()
	return cs
}

// Memory is what the broker said of its own memory, by the topic
// Config.MemoryTopic names, before the connections were made and while
// they were held.
type Memory struct {
	Topic  string `json:"topic"`
	Before uint64 `json:"before_bytes"`
	After  uint64 `json:"after_bytes"`
	// PerConnection is (After - Before) over the connections established.
	PerConnection float64 `json:"per_connection_bytes"`
}

// memWatch follows the broker's memory figure on one topic.
type memWatch struct {
	nc      net.Conn
	mu      sync.Mutex
	value   uint64
	updates int
	changed chan struct{} // signalled on each update
	done    chan struct{}
	err     atomic.Value
}

// watchMemory connects a client of its own that subscribes to topic and
// waits for the first value.
func (e *engine) watchMemory(ctx context.Context) (*memWatch, error) {
	cfg := &e.cfg
	d := e.dialers[0]
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	nc, err := cfg.dial(dctx, d)
	if err != nil {
		return nil, err
	}
	c := &client{e: e, role: 'm', id: cfg.ClientIDPrefix + "m", nc: nc, rbuf: make([]byte, 4096)}
	nc.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	p := &packet.Connect{Version: cfg.Version, CleanStart: true, ClientID: c.id}
	if cfg.Username != "" {
		p.UsernameFlag, p.Username = true, cfg.Username
		p.PasswordFlag, p.Password = cfg.Password != "", []byte(cfg.Password)
	}
	if err := c.writePacket(p); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.expect(packet.CONNACK); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.writePacket(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: cfg.MemoryTopic}}}); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	w := &memWatch{nc: nc, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			p, err := c.next()
			if err != nil {
				w.err.Store(err)
				return
			}
			pub, ok := p.(*packet.Publish)
			if !ok {
				continue
			}
			f := strings.Fields(string(pub.Payload))
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				continue
			}
			w.mu.Lock()
			w.value = v
			w.updates++
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	if _, ok := w.fresh(0, cfg.ConnectTimeout+30*time.Second); !ok {
		w.close()
		return nil, errNoMemoryFigure
	}
	return w, nil
}

// updateCount returns how many figures arrived so far.
func (w *memWatch) updateCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.updates
}

// fresh waits up to limit for a figure after the first `after` ones.
func (w *memWatch) fresh(after int, limit time.Duration) (uint64, bool) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		w.mu.Lock()
		v, n := w.value, w.updates
		w.mu.Unlock()
		if n > after {
			return v, true
		}
		select {
		case <-w.changed:
		case <-w.done:
			return 0, false
		case <-t.C:
			return 0, false
		}
	}
}

func (w *memWatch) close() {
	w.nc.Close()
	<-w.done
}
