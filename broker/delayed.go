package broker

import (
	"container/heap"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// Delayed publish, EMQX's convention: a PUBLISH to
// "$delayed/{seconds}/{topic}" is held for that many seconds, then
// published to {topic} as if its publisher had sent it then. Held messages
// are written to the store when it keeps them (store.DelayedStore), before
// the PUBACK, so they survive a restart and a crash; one is removed from
// the store after it is published, so a crash in between publishes it
// again at restart (at least once).

const delayedPrefix = "$delayed/"

// held is one delayed message.
type held struct {
	id    uint64
	due   time.Time
	rec   *store.Message // Topic is the target topic
	from  string         // publisher's client identifier ("" after a restart)
	index int            // in the heap
}

type heldHeap []*held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].id < h[j].id
	}
	return h[i].due.Before(h[j].due)
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *heldHeap) Push(x any)   { x.(*held).index = len(*h); *h = append(*h, x.(*held)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// delayQueue holds the delayed messages, earliest first. Its mu is taken
// with no other broker lock held, and is held while a due message is
// published (so outside every other lock of the order in architecture.md).
type delayQueue struct {
	mu      sync.Mutex
	heap    heldHeap
	byID    map[uint64]*held
	lastID  uint64
	timer   *time.Timer
	ds      store.DelayedStore // nil: held in memory only
	stopped bool
}

// parseDelayed splits "$delayed/{seconds}/{topic}". ok is false when name
// is not a delayed topic at all; rc is the reason to refuse a malformed
// one or one above the maximum delay.
func parseDelayed(name string, maxDelay time.Duration) (target string, delay time.Duration, rc packet.ReasonCode, ok bool) {
	rest, ok := strings.CutPrefix(name, delayedPrefix)
	if !ok {
		return "", 0, 0, false
	}
	secs, target, found := strings.Cut(rest, "/")
	if !found || secs == "" || len(secs) > 10 || target == "" || target[0] == '$' {
		return "", 0, packet.TopicNameInvalid, true
	}
	n, err := strconv.ParseUint(secs, 10, 64)
	if err != nil {
		return "", 0, packet.TopicNameInvalid, true
	}
	delay = time.Duration(n) * time.Second
	if delay > maxDelay {
		return "", 0, packet.ImplementationSpecificError, true
	}
	return target, delay, packet.Success, true
}

// startDelayed reads the held messages back from the store and arms the
// timer for the earliest; messages already due go out at once.
func (s *Server) startDelayed() error {
	dq := &s.delayed
	dq.byID = make(map[uint64]*held)
	ds, ok := store.Find[store.DelayedStore](s.store)
	if !ok {
		return nil
	}
	dq.ds = ds
	err := ds.LoadDelayed(func(d *store.Delayed) error {
		h := &held{id: d.ID, due: d.Due, rec: d.Message}
		heap.Push(&dq.heap, h)
		dq.byID[h.id] = h
		dq.lastID = max(dq.lastID, h.id)
		return nil
	})
	if err != nil {
		return err
	}
	if n := len(dq.heap); n > 0 {
		s.log.Info("restored delayed messages from the store", "count", n)
	}
	dq.mu.Lock()
	s.armDelayedLocked()
	dq.mu.Unlock()
	return nil
}

// armDelayedLocked sets the timer for the earliest held message. dq.mu held.
func (s *Server) armDelayedLocked() {
	dq := &s.delayed
	if dq.stopped || len(dq.heap) == 0 {
		return
	}
	wait := time.Until(dq.heap[0].due)
	if dq.timer == nil {
		dq.timer = time.AfterFunc(wait, s.releaseDelayed)
		return
	}
	dq.timer.Reset(wait)
}

// stopDelayed stops releasing held messages (Close); one being published
// finishes first.
func (s *Server) stopDelayed() {
	dq := &s.delayed
	dq.mu.Lock()
	dq.stopped = true
	if dq.timer != nil {
		dq.timer.Stop()
	}
	dq.mu.Unlock()
}

// releaseDelayed publishes the held messages that are due.
func (s *Server) releaseDelayed() {
	dq := &s.delayed
	dq.mu.Lock()
	defer dq.mu.Unlock()
	now := time.Now()
	released := 0
	for !dq.stopped && len(dq.heap) > 0 && !dq.heap[0].due.After(now) {
		h := heap.Pop(&dq.heap).(*held)
		delete(dq.byID, h.id)
		s.stats.delayedReleased.Add(1)
		s.publishHeld(h, now)
		if dq.ds != nil {
			s.storeErr("remove delayed message", h.rec.Topic, dq.ds.RemoveDelayed(h.id))
		}
		released++
	}
	if released > 0 {
		s.syncStore()
	}
	s.armDelayedLocked()
}

// publishHeld routes a held message now: its expiry interval counts from
// now, as if its publisher had sent it now.
func (s *Server) publishHeld(h *held, now time.Time) {
	r := h.rec
	m := &message{topic: r.Topic, payload: r.Payload, qos: r.QoS, retain: r.Retain, props: r.Properties, created: now}
	if m.props.Has(packet.PropMessageExpiry) {
		m.expiry = now.Add(time.Duration(m.props.MessageExpiry) * time.Second)
	}
	s.pubMu.Lock()
	s.publish(m, nil, &s.pubMatches)
	s.pubMu.Unlock()
	s.log.Debug("delayed message published", "topic", r.Topic, "id", h.id)
}

// hold keeps m, a PUBLISH to a delayed topic already parsed into m.topic
// (the target), for delay. It returns Success, or QuotaExceeded when
// MaxDelayed messages are held already.
func (s *Server) hold(m *message, delay time.Duration, from string) packet.ReasonCode {
	o := s.opt()
	dq := &s.delayed
	dq.mu.Lock()
	defer dq.mu.Unlock()
	if dq.stopped {
		return packet.ServerUnavailable
	}
	if o.MaxDelayed > 0 && len(dq.heap) >= o.MaxDelayed {
		return packet.QuotaExceeded
	}
	dq.lastID++
	h := &held{id: dq.lastID, due: m.created.Add(delay), from: from}
	h.rec = &store.Message{ID: h.id, Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Properties: m.props, Created: m.created}
	if dq.ds != nil {
		err := dq.ds.AddDelayed(&store.Delayed{ID: h.id, Due: h.due, Message: h.rec})
		s.storeErr("store delayed message", m.topic, err)
		if err != nil {
			return packet.UnspecifiedError
		}
	}
	heap.Push(&dq.heap, h)
	dq.byID[h.id] = h
	if dq.heap[0] == h {
		s.armDelayedLocked()
	}
	return packet.Success
}

// DelayedMessage describes a held delayed message (admin API).
type DelayedMessage struct {
	ID       uint64    `json:"id"`
	Topic    string    `json:"topic"` // where it will be published
	QoS      byte      `json:"qos"`
	Retain   bool      `json:"retain"`
	Size     int       `json:"size"` // payload bytes
	Due      time.Time `json:"due"`
	ClientID string    `json:"client_id,omitempty"` // publisher; unknown after a restart
}

// DelayedMessages lists the held delayed messages, earliest first.
func (s *Server) DelayedMessages() []DelayedMessage {
	dq := &s.delayed
	dq.mu.Lock()
	out := make([]DelayedMessage, 0, len(dq.heap))
	for _, h := range dq.heap {
		out = append(out, DelayedMessage{ID: h.id, Topic: h.rec.Topic, QoS: h.rec.QoS, Retain: h.rec.Retain,
			Size: len(h.rec.Payload), Due: h.due, ClientID: h.from})
	}
	dq.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Due.Equal(out[j].Due) {
			return out[i].ID < out[j].ID
		}
		return out[i].Due.Before(out[j].Due)
	})
	return out
}

// CancelDelayed discards held message id; false when no such message is
// held (published already, or never was).
func (s *Server) CancelDelayed(id uint64) bool {
	dq := &s.delayed
	dq.mu.Lock()
	defer dq.mu.Unlock()
	h, ok := dq.byID[id]
	if !ok {
		return false
	}
	heap.Remove(&dq.heap, h.index)
	delete(dq.byID, id)
	if dq.ds != nil {
		s.storeErr("remove delayed message", h.rec.Topic, dq.ds.RemoveDelayed(id))
		s.syncStore()
	}
	s.log.Info("delayed message cancelled", slog.Uint64("id", id), "topic", h.rec.Topic)
	return true
}
