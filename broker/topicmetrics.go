package broker

import (
	"sync"
	"sync/atomic"
)

// Per-topic metrics: for each filter of Options.TopicMetrics, the messages
// and bytes (payload) routed to topics it matches and sent to subscribers,
// and those dropped, by QoS. The filters a topic matches are found once per
// topic and cached; each message carries the result, so counting a delivery
// costs a few atomic adds and no matching.

// topicCounters are the counters of one filter.
type topicCounters struct {
	filter                     string
	in, inBytes, out, outBytes atomic.Uint64
	dropped                    atomic.Uint64
	inQoS, outQoS, droppedQoS  [3]atomic.Uint64
}

// topicMetrics finds the counters of a topic.
type topicMetrics struct {
	list  []*topicCounters
	mu    sync.RWMutex
	cache map[string][]*topicCounters // topic -> the counters of the filters it matches (nil: none)
}

// topicMetricsCacheMax bounds the cache of topics; past it, it starts afresh.
const topicMetricsCacheMax = 1 << 16

func newTopicMetrics(filters []string) *topicMetrics {
	if len(filters) == 0 {
		return nil
	}
	tm := &topicMetrics{cache: make(map[string][]*topicCounters)}
	seen := make(map[string]bool)
	for _, f := range filters {
		if !seen[f] {
			seen[f] = true
			tm.list = append(tm.list, &topicCounters{filter: f})
		}
	}
	return tm
}

// lookup returns the counters of the filters name matches (nil: none).
func (tm *topicMetrics) lookup(name string) []*topicCounters {
	tm.mu.RLock()
	l, ok := tm.cache[name]
	tm.mu.RUnlock()
	if ok {
		return l
	}
	for _, c := range tm.list {
		if filterMatches(c.filter, name) {
			l = append(l, c)
		}
	}
	tm.mu.Lock()
	if len(tm.cache) >= topicMetricsCacheMax {
		clear(tm.cache)
	}
	tm.cache[name] = l
	tm.mu.Unlock()
	return l
}

// countIn counts m as routed, and notes its counters on it for the
// deliveries. Before m is shared.
func (s *Server) countIn(m *message) {
	tm := s.topicMetrics.Load()
	if tm == nil {
		return
	}
	m.tm = tm.lookup(m.topic)
	for _, c := range m.tm {
		c.in.Add(1)
		c.inBytes.Add(uint64(len(m.payload)))
		c.inQoS[m.qos].Add(1)
	}
}

// countOut counts one copy of m sent at qos.
func (m *message) countOut(qos byte) {
	for _, c := range m.tm {
		c.out.Add(1)
		c.outBytes.Add(uint64(len(m.payload)))
		c.outQoS[qos].Add(1)
	}
}

// countDropped counts one copy of m (at qos) that was dropped.
func (m *message) countDropped(qos byte) {
	for _, c := range m.tm {
		c.dropped.Add(1)
		c.droppedQoS[qos].Add(1)
	}
}

// TopicStats are the counters of one filter of Options.TopicMetrics.
type TopicStats struct {
	Filter           string
	MessagesIn       uint64    // messages routed to a matching topic
	BytesIn          uint64    // their payload bytes
	MessagesOut      uint64    // copies sent to subscribers
	BytesOut         uint64    // their payload bytes
	Dropped          uint64    // copies dropped (queue full, slow client, too large, over a quota)
	MessagesInByQoS  [3]uint64 // MessagesIn by the publisher's QoS
	MessagesOutByQoS [3]uint64 // MessagesOut by the QoS of the copy
	DroppedByQoS     [3]uint64
}

// TopicStats returns the counters of the configured topic metric filters,
// in configuration order.
func (s *Server) TopicStats() []TopicStats {
	tm := s.topicMetrics.Load()
	if tm == nil {
		return nil
	}
	out := make([]TopicStats, len(tm.list))
	for i, c := range tm.list {
		t := &out[i]
		t.Filter = c.filter
		t.MessagesIn, t.BytesIn = c.in.Load(), c.inBytes.Load()
		t.MessagesOut, t.BytesOut = c.out.Load(), c.outBytes.Load()
		t.Dropped = c.dropped.Load()
		for q := range 3 {
			t.MessagesInByQoS[q] = c.inQoS[q].Load()
			t.MessagesOutByQoS[q] = c.outQoS[q].Load()
			t.DroppedByQoS[q] = c.droppedQoS[q].Load()
		}
	}
	return out
}
