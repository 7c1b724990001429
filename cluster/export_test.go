package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gannet-mqtt/gannet/packet"
)

// StoredMessage returns the last QoS 1/2 message the messages stream holds
// for topicName, as the stream's leader has it: a direct get may be
// answered by a replica that has stored a message just acknowledged but
// not applied it yet (a follower learns that an entry is committed from
// the leader's next append entry or heartbeat).
func (c *Cluster) StoredMessage(topicName string) (*packet.Publish, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": c.prefix + "q." + TopicSubject(topicName)})
	m, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+c.messageStream(), req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, err
	}
	if resp.Error != nil || resp.Message == nil {
		return nil, fmt.Errorf("stream message get: %+v", resp.Error)
	}
	return decode(resp.Message.Data)
}

// NATSSubs returns how many NATS subscriptions this node holds for an
// MQTT filter, and how many local subscriptions use it.
func (c *Cluster) NATSSubs(filter string) (subs, users int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.interest[filter]
	if fs == nil {
		return 0, 0
	}
	return len(fs.subs), fs.n
}

// Crash stops the node's NATS server at once, as kill -9 would stop the
// process, leaving its broker running but cut off: no heartbeat, no
// goodbye.
func (c *Cluster) Crash() {
	if c.ns != nil {
		c.ns.Shutdown()
	}
}

// WithAdvertise returns o for a node that tells the others addr as its
// route address, for the routes they make on their own.
func WithAdvertise(o Options, addr string) Options {
	o.advertise = addr
	return o
}

// Leaderships weighs what this node's NATS server leads of what the
// cluster needs to accept CONNECTs and QoS 1/2 messages: the messages
// stream and the owners bucket count 1 each, the JetStream meta group 10
// (a node that loses it also stalls the creation of consumers).
func (c *Cluster) Leaderships() int {
	if c.ns == nil {
		return 0
	}
	n := 0
	if c.ns.JetStreamIsLeader() {
		n += 10
	}
	acc := c.ns.GlobalAccount().Name
	for _, st := range []string{c.messageStream(), "KV_gannet_" + c.opt.Name + "_owners"} {
		if c.ns.JetStreamIsStreamLeader(acc, st) {
			n++
		}
	}
	return n
}

// StepDown asks this node's NATS server to hand the leadership of the
// messages stream and the owners bucket to another node, where it has it.
func (c *Cluster) StepDown() {
	if c.ns == nil {
		return
	}
	acc := c.ns.GlobalAccount().Name
	for _, st := range []string{c.messageStream(), "KV_gannet_" + c.opt.Name + "_owners"} {
		if c.ns.JetStreamIsStreamLeader(acc, st) {
			c.ns.JetStreamStepdownStream(acc, st)
		}
	}
}

// OwnerKeyRoundTrip maps a client identifier to its owners bucket key and
// back.
func OwnerKeyRoundTrip(id string) (string, error) { return ownerID(ownerKey(id)) }

// StoredSession reports whether the sessions bucket holds clientID's
// session record.
func (c *Cluster) StoredSession(clientID string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.sessions.Get(ctx, sessionKey(clientID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Adopted returns how many sessions of dead nodes this node adopted, and
// how long its last adoption took (the replay that follows not included).
func (c *Cluster) Adopted() (uint64, time.Duration) {
	return c.adopted.Load(), time.Duration(c.lastAdoption.Load())
}

// PauseSessionWrites holds this node's session writes (as a JetStream too
// slow to answer would) until resume is called.
func (c *Cluster) PauseSessionWrites() (resume func()) {
	g := make(chan struct{})
	c.shared.w.gate.Store(&g)
	return func() {
		c.shared.w.gate.Store(nil)
		close(g)
	}
}

// PendingSessionWrites returns how many session writes wait to be stored.
func (c *Cluster) PendingSessionWrites() int { return c.shared.w.Pending() }

// Checkpoint returns where a replay of clientID's session from this node
// would start, as its checkpoint record in the sessions bucket says.
func (c *Cluster) Checkpoint(clientID string) (uint64, bool) {
	return c.checkpointOf(c.origin, clientID)
}

// LastStored returns the messages stream's last sequence.
func (c *Cluster) LastStored() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.lastSeq(ctx)
}

// FailLoads makes this node's reads of clientID's session fail (as when
// JetStream does not answer in time) while fail returns true.
func (c *Cluster) FailLoads(clientID string, fail func() bool) {
	h := func(id string) error {
		if id == clientID && fail() {
			return errors.New("test: session read fails")
		}
		return nil
	}
	c.loadHook.Store(&h)
}

// PendingSessionWritesOf returns how many writes of clientID wait.
func (c *Cluster) PendingSessionWritesOf(clientID string) int {
	c.shared.w.mu.Lock()
	defer c.shared.w.mu.Unlock()
	if q := c.shared.w.qs[clientID]; q != nil {
		return len(q.ops)
	}
	return 0
}

// DropLive makes this node drop the next n live messages on topicName
// from other nodes, as a lossy route would: only the audit can bring them.
func (c *Cluster) DropLive(topicName string, n int) {
	h := &dropHook{subject: c.prefix + "m." + TopicSubject(topicName)}
	h.n.Store(int64(n))
	c.dropLive.Store(h)
}

// Filled returns how many messages this node read from the messages
// stream because they did not arrive live (audit.go).
func (c *Cluster) Filled() uint64 { return c.filled.Load() }

// Applied returns this node's checkpoint as its audit has it.
func (c *Cluster) Applied() uint64 { return c.applied.Load() }

// WithDispatchQueue returns o for a node whose queue of live messages
// from other nodes holds n: core NATS drops what overflows it.
func WithDispatchQueue(o Options, n int) Options {
	o.dispatchQueue = n
	return o
}

// GapsFound returns how many stored messages this node's audit saw before
// their live copy, or without one.
func (c *Cluster) GapsFound() uint64 { return c.gapsFound.Load() }

// LiveDropped returns how many live messages core NATS dropped on this
// node's non-shared subscriptions because the dispatch queue was full
// (a slow consumer): the audit must find each of them as a gap.
func (c *Cluster) LiveDropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, fs := range c.interest {
		if fs.af == nil {
			continue
		}
		for _, s := range fs.subs {
			if d, err := s.Dropped(); err == nil {
				n += d
			}
		}
	}
	return n
}
