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
// The totals are sums over QoS: one atomic add per message and QoS-level
// counter, one for its bytes.
type topicCounters struct {
	filter                    string
	inBytes, outBytes         atomic.Uint64
	inQoS, outQoS, droppedQoS [3]atomic.Uint64
}

// topicMetrics finds the counters of a topic. The cache is a sync.Map:
// topics are read far more often than new ones are added, and its reads
// write no shared memory (a read lock would, on every publish).
type topicMetrics struct {
	list   []*topicCounters
	cache  sync.Map     // topic -> []*topicCounters of the filters it matches (nil: none)
	cached atomic.Int64 // entries in cache
}

// topicMetricsCacheMax bounds the cache of topics; past it, it starts afresh.
const topicMetricsCacheMax = 1 << 16

func newTopicMetrics(filters []string) *topicMetrics {
	if len(filters) == 0 {
		return nil
	}
	tm := &topicMetrics{}
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
	if l, ok := tm.cache.Load(name); ok {
		return l.([]*topicCounters)
	}
	var l []*topicCounters
	for _, c := range tm.list {
		if filterMatches(c.filter, name) {
			l = append(l, c)
		}
	}
	if tm.cached.Add(1) > topicMetricsCacheMax {
		tm.cache.Clear()
		tm.cached.Store(1)
	}
	tm.cache.Store(name, l)
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
		c.inQoS[m.qos].Add(1)
		c.inBytes.Add(uint64(len(m.payload)))
	}
}

// countOut counts one copy of m sent at qos.
func (m *message) countOut(qos byte) {
	for _, c := range m.tm {
		c.outQoS[qos].Add(1)
		c.outBytes.Add(uint64(len(m.payload)))
	}
}

// countDropped counts one copy of m (at qos) that was dropped.
func (m *message) countDropped(qos byte) {
	for _, c := range m.tm {
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
		t.BytesIn, t.BytesOut = c.inBytes.Load(), c.outBytes.Load()
		for q := range 3 {
			t.MessagesInByQoS[q] = c.inQoS[q].Load()
			t.MessagesOutByQoS[q] = c.outQoS[q].Load()
			t.DroppedByQoS[q] = c.droppedQoS[q].Load()
			t.MessagesIn += t.MessagesInByQoS[q]
			t.MessagesOut += t.MessagesOutByQoS[q]
			t.Dropped += t.DroppedByQoS[q]
		}
	}
	return out
}
