package cluster

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The messages a dead node held for $share members.
//
// A node records, in the KV bucket gannet_NAME_shared, each QoS 1/2
// message it holds for a member of a shared subscription with a clean
// session (key NODE.SEQ.GROUP, SEQ the message's sequence in the messages
// stream), and deletes the record when the member acknowledged it (QoS 1)
// or got it at QoS 2. The writes go through one goroutine, in order,
// without holding up delivery. When a node dies, each survivor claims
// each of its records by deleting it at the revision read (one succeeds,
// as for wills) and routes the message again to the group alone (header
// Gannet-Share-Only): NATS gives it to one node with a member, which gives
// it to one member. A persistent member's messages stay in its session,
// which a survivor adopts.

const hdrShareOnly = "Gannet-Share-Only"

type sharedOp struct {
	key  string
	held bool
}

func (c *Cluster) sharedKey(origin, group string, seq uint64) string {
	return origin + "." + strconv.FormatUint(seq, 10) + "." + string(appendLevel(nil, group))
}

// SharedHeld implements broker.SharedTracker.
func (c *Cluster) SharedHeld(group string, seq uint64) { c.sharedOp(group, seq, true) }

// SharedDone implements broker.SharedTracker.
func (c *Cluster) SharedDone(group string, seq uint64) { c.sharedOp(group, seq, false) }

func (c *Cluster) sharedOp(group string, seq uint64, held bool) {
	if !c.ready.Load() {
		return
	}
	select {
	case c.sharedOps <- sharedOp{c.sharedKey(c.origin, group, seq), held}:
	default:
		c.log.Warn("cluster: too many shared-subscription records pending: a message held for a member may be lost if this node dies", "group", group)
	}
}

// sharedLoop writes the records, in order.
func (c *Cluster) sharedLoop() {
	defer c.wg.Done()
	for {
		var op sharedOp
		select {
		case <-c.stop:
			return
		case op = <-c.sharedOps:
		}
		ctx, cancel := context.WithTimeout(c.base, StoreTimeout)
		var err error
		if op.held {
			_, err = c.shared2.Put(ctx, op.key, nil)
		} else {
			err = c.shared2.Purge(ctx, op.key)
		}
		cancel()
		if err != nil {
			c.log.Debug("cluster: shared-subscription record not written", "key", op.key, "error", err)
		}
	}
}

// redeliverShared routes again, to their groups alone, the messages a
// dead node instance held for shared members.
func (c *Cluster) redeliverShared(dead string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.base, time.Minute)
	defer cancel()
	// Right after a death JetStream may be electing leaders: tried
	// again, within the minute, before the messages are given up.
	var (
		keys []string
		st   jetstream.Stream
		err  error
	)
	for {
		keys, err = c.listKeys(ctx, c.shared2, dead+".>")
		if err == nil {
			st, err = c.js.Stream(ctx, c.messageStream())
		}
		if err == nil {
			break
		}
		c.log.Debug("cluster: cannot read the shared-subscription messages of a dead node yet; retrying", "node", dead, "error", err)
		select {
		case <-ctx.Done():
			c.log.Warn("cluster: cannot read the shared-subscription messages of a dead node: they are lost", "node", dead, "error", err)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	n := 0
	for _, k := range keys {
		parts := strings.SplitN(strings.TrimPrefix(k, dead+"."), ".", 2)
		if len(parts) != 2 {
			continue
		}
		seq, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			continue
		}
		group, err := SubjectTopic(parts[1])
		if err != nil {
			continue
		}
		e, err := c.shared2.Get(ctx, k)
		if err != nil {
			continue
		}
		if err := c.shared2.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil {
			continue // another survivor claimed it
		}
		sm, err := st.GetMsg(ctx, seq)
		if err != nil {
			c.log.Warn("cluster: a shared-subscription message of a dead node is no longer stored: lost", "node", dead, "seq", seq, "error", err)
			continue
		}
		subj := strings.TrimPrefix(sm.Subject, c.prefix+"q.")
		msg := &nats.Msg{Subject: c.prefix + "m." + subj, Data: sm.Data, Header: nats.Header{}}
		msg.Header.Set(hdrShareOnly, group)
		msg.Header.Set(hdrStreamSeq, strconv.FormatUint(seq, 10))
		if err := c.nc.PublishMsg(msg); err == nil {
			n++
		}
	}
	if n > 0 {
		c.log.Info("cluster: gave the shared-subscription messages a dead node held to other members", "node", dead, "messages", n)
	}
}
