package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/packet"
)

// The wills of a node that dies. Each node writes the will of each of its
// connected clients to a replicated KV bucket (KeepWill) and removes it
// when the connection ends (DropWill: the node then publishes or drops the
// will itself). Each node also writes a heartbeat every second to a bucket
// whose entries expire. A node that has not heard a heartbeat of the
// node that wrote a will for DeadAfter claims the will by deleting it at
// the revision it read; only one node can succeed, and that node
// publishes the will after its delay.

const (
	// HeartbeatEvery is how often a node writes its heartbeat.
	HeartbeatEvery = time.Second
	// DeadAfter is how long without a heartbeat makes a node dead.
	DeadAfter = 3 * time.Second
)

type keptWill struct {
	origin string
	rev    uint64
	delay  time.Duration
	data   []byte
}

func encodeWill(origin string, delay time.Duration, p *packet.Publish) ([]byte, error) {
	q := *p
	if q.QoS > 0 {
		q.PacketID = 1
	}
	data, err := q.Append(nil, packet.V5)
	if err != nil {
		return nil, err
	}
	head := origin + "\n" + strconv.FormatInt(int64(delay/time.Second), 10) + "\n"
	return append([]byte(head), data...), nil
}

func decodeWill(v []byte, rev uint64) (keptWill, error) {
	origin, rest, ok1 := strings.Cut(string(v), "\n")
	delay, data, ok2 := strings.Cut(rest, "\n")
	secs, err := strconv.ParseInt(delay, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return keptWill{}, errors.New("cluster: malformed will entry")
	}
	return keptWill{origin: origin, rev: rev, delay: time.Duration(secs) * time.Second, data: []byte(data)}, nil
}

// watchWills starts the loop that watches the wills and the heartbeats.
func (c *Cluster) watchWills(nodes jetstream.KeyValue) error {
	wctx, cancel := context.WithCancel(context.Background())
	ww, err := c.wills.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("wills watcher: %w", err)
	}
	nw, err := nodes.WatchAll(wctx)
	if err != nil {
		cancel()
		return fmt.Errorf("nodes watcher: %w", err)
	}
	c.ops.nodes.Store(&nodes)
	c.wg.Add(1)
	go c.willLoop(cancel, nodes, ww, nw)
	return nil
}

func (c *Cluster) willLoop(cancel context.CancelFunc, nodes jetstream.KeyValue, ww, nw jetstream.KeyWatcher) {
	defer c.wg.Done()
	defer cancel()
	known := make(map[string]keptWill)
	seen := make(map[string]time.Time)
	start := time.Now()
	beat := time.NewTicker(HeartbeatEvery)
	defer beat.Stop()
	check := time.NewTicker(HeartbeatEvery / 2)
	defer check.Stop()
	// Once the live nodes' heartbeats have been heard, look for sessions
	// orphaned before this node started (orphans.go).
	orphans := time.After(DeadAfter)
	// beating is since when this node's heartbeats have been written
	// without a failure (zero after one failed). While the nodes bucket
	// cannot be written (its leader died and NATS elects another 1.5 to
	// 2.25 s later, election.go; or no quorum) no node's heartbeat arrives, and a node judged
	// by it would look dead: nodes are judged only once this one's own
	// heartbeats have gone through for DeadAfter.
	var beating time.Time
	heartbeat := func() {
		ctx, cancel := context.WithTimeout(context.Background(), HeartbeatEvery)
		defer cancel()
		if h := c.beatHook.Load(); h != nil && !(*h)() { // tests: the write is lost
			return
		}
		if _, err := nodes.Put(ctx, c.origin, c.heartbeatValue()); err != nil {
			c.log.Debug("cluster: heartbeat not written", "error", err)
			beating = time.Time{}
			return
		}
		if beating.IsZero() {
			beating = time.Now()
		}
	}
	heartbeat()
	for {
		select {
		case <-c.stop:
			return
		case e := <-ww.Updates():
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(known, e.Key())
				continue
			}
			w, err := decodeWill(e.Value(), e.Revision())
			if err != nil {
				c.log.Warn("cluster: unreadable will skipped", "key", e.Key(), "error", err)
				continue
			}
			known[e.Key()] = w
		case e := <-nw.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				seen[e.Key()] = time.Now()
			}
			if e != nil {
				c.notePeer(e) // ops.go
			}
		case <-beat.C:
			heartbeat()
		case now := <-orphans:
			if beating.IsZero() || now.Sub(beating) < DeadAfter {
				orphans = time.After(HeartbeatEvery / 2) // not yet
				continue
			}
			orphans = nil // once
			live := make(map[string]bool)
			for origin, last := range seen {
				if now.Sub(last) < DeadAfter {
					live[origin] = true
				}
			}
			c.mu.Lock()
			if !c.closed {
				c.wg.Add(1)
				go c.adoptOrphans(live)
			}
			c.mu.Unlock()
		case now := <-check.C:
			if beating.IsZero() || now.Sub(beating) < DeadAfter {
				continue // the heartbeats cannot be trusted to arrive yet
			}
			for origin, last := range seen {
				if origin != c.origin && now.Sub(last) >= DeadAfter {
					c.adoptDead(origin) // its persistent sessions (adopt.go)
				}
			}
			for key, w := range known {
				if w.origin == c.origin {
					continue
				}
				last, ok := seen[w.origin]
				if ok && now.Sub(last) < DeadAfter || !ok && now.Sub(start) < DeadAfter {
					continue
				}
				if !c.claimWill(key, w) {
					delete(known, key)
				}
			}
		}
	}
}

// claimWill deletes the will of a dead node's client at the revision read;
// the one node that succeeds publishes it after its delay. It returns true
// if the node turned out to be alive (look again later).
func (c *Cluster) claimWill(key string, w keptWill) (alive bool) {
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	if c.alive(ctx, w.origin) || c.reachable(ctx, w.origin) {
		return true // its heartbeat is still in the bucket (this node's view lagged), or it is still on NATS
	}
	// A delayed will is registered before the delete: a client that
	// reconnects meanwhile cancels it (willresume.go) [MQTT-3.1.3-9].
	var pw *pendingWill
	if w.delay > 0 {
		pw = c.wr.register(key, w.rev)
	}
	if err := c.wills.Delete(ctx, key, jetstream.LastRevision(w.rev)); err != nil {
		if pw != nil {
			c.wr.forget(key, pw)
		}
		return false // another node claimed it, or it changed
	}
	p, err := decode(w.data)
	if err != nil {
		if pw != nil {
			c.wr.forget(key, pw)
		}
		c.log.Warn("cluster: unreadable will of a dead node dropped", "key", key, "error", err)
		return false
	}
	publish := func() {
		c.log.Info("cluster: publishing the will of a client of a dead node", "topic", p.Topic, "node", w.origin, "delay", w.delay)
		c.in.Publish(p)
	}
	if pw != nil {
		// Published once the delay has passed, unless the client
		// reconnected before [MQTT-3.1.3-9].
		if !c.wr.arm(key, pw, w.delay, publish) {
			c.log.Info("cluster: the delayed will of a dead node's client is cancelled: the client reconnected within its will delay", "key", key, "dead_node", w.origin)
		}
		return false
	}
	publish()
	return false
}

// KeepWill implements broker.WillKeeper.
func (c *Cluster) KeepWill(clientID string, will *packet.Publish, delay time.Duration) {
	if !c.ready.Load() {
		return
	}
	v, err := encodeWill(c.origin, delay, will)
	if err != nil {
		c.log.Warn("cluster: cannot keep a will: it is lost if this node dies", "client", clientID, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	rev, err := c.wills.Put(ctx, ownerKey(clientID), v)
	if err != nil {
		c.log.Warn("cluster: cannot keep a will: it is lost if this node dies", "client", clientID, "error", err)
		return
	}
	c.mu.Lock()
	c.willRevs[clientID] = rev
	c.mu.Unlock()
}

// DropWill implements broker.WillKeeper: it deletes the will this node
// wrote, unless another connection has since written one for the client.
func (c *Cluster) DropWill(clientID string) {
	c.mu.Lock()
	rev, ok := c.willRevs[clientID]
	delete(c.willRevs, clientID)
	ok = ok && !c.closed
	if ok {
		c.ops.drops.Add(1) // Close waits for it (ops.go)
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	// In the background: the connection's end need not wait for it (a
	// node without quorum would wait StoreTimeout), and a will written
	// since by a new connection has another revision, so it stays.
	go func() {
		defer c.ops.drops.Done()
		ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
		defer cancel()
		c.wills.Delete(ctx, ownerKey(clientID), jetstream.LastRevision(rev))
	}()
}
