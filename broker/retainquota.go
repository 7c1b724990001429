package broker

import "github.com/gannet-mqtt/gannet/packet"

// Retained messages are capped in count and bytes, for the whole broker
// and for each identity (user name, certificate identity, or all anonymous
// clients together: see identityOf). A retained PUBLISH that would go over
// a cap is not stored; one that replaces or deletes never is refused for
// what it frees.

// retainOverhead is what a retained message costs besides its topic,
// payload and properties: the message, its index node and store record.
const retainOverhead = 256

// retainQuota is the retained messages' usage. Guarded by Server.retainMu.
type retainQuota struct {
	count  int
	bytes  int64
	owners map[string]*retainUsage // by identity; "" (restored, or from the broker) is not kept
}

type retainUsage struct {
	count int
	bytes int64
}

// retainCost is what m costs while retained, in bytes.
func retainCost(m *message) int64 {
	n := retainOverhead + len(m.topic) + len(m.payload) + propsCost(&m.props)
	return int64(n)
}

// propsCost estimates the memory of a message's properties.
func propsCost(p *packet.Properties) int {
	n := len(p.ContentType) + len(p.ResponseTopic) + len(p.CorrelationData)
	for _, u := range p.User {
		n += 32 + len(u.Key) + len(u.Value)
	}
	return n
}

// retainLocked stores m as the retained message of its topic, or deletes
// the topic's for an empty payload, keeping the quota's accounts. It
// reports false, storing nothing, when m would take the broker or m's
// owner over a cap [MQTT-3.3.1-5] [MQTT-3.3.1-10]. retainMu held.
func (s *Server) retainLocked(m *message) bool {
	old, had := s.retained.Get(m.topic)
	if len(m.payload) == 0 {
		if had && s.retained.Delete(m.topic) { // [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.3.1-6] [MQTT-3.3.1-7]
			s.retainQuota.remove(old)
			if t := m.txn.Load(); t == nil || !t.retain(nil, m.topic) {
				s.storeErr("delete retained message", m.topic, s.store.DeleteRetained(m.topic))
			}
		}
		return true
	}
	if !s.retainQuota.fits(s.opt(), m, old, had) {
		s.stats.retainRefused.Add(1)
		return false
	}
	if had {
		s.retainQuota.remove(old)
	}
	s.retainQuota.add(m)
	s.retained.Set(m.topic, m) // [MQTT-3.3.1-5]
	if t := m.txn.Load(); t == nil || !t.retain(s.storeMessage(m), "") {
		s.storeErr("store retained message", m.topic, s.store.SetRetained(s.storeMessage(m)))
	}
	s.retainedExpiresAt(m.expiry) // deleted when it expires [MQTT-3.3.2-5]
	return true
}

// fits reports whether storing m, replacing old when had, keeps within the
// caps of o. A message that takes no more than the one it replaces, for
// the broker and for its owner, always fits.
func (q *retainQuota) fits(o *Options, m, old *message, had bool) bool {
	cost := retainCost(m)
	count, bytes := q.count+1, q.bytes+cost
	if had {
		count--
		bytes -= retainCost(old)
	}
	if (o.MaxRetained > 0 && count > o.MaxRetained && count > q.count) ||
		(o.MaxRetainedBytes > 0 && bytes > o.MaxRetainedBytes && bytes > q.bytes) {
		return false
	}
	if m.owner == "" {
		return true
	}
	var u retainUsage
	if p := q.owners[m.owner]; p != nil {
		u = *p
	}
	ucount, ubytes := u.count+1, u.bytes+cost
	if had && old.owner == m.owner {
		ucount--
		ubytes -= retainCost(old)
	}
	return !(o.MaxRetainedPerUser > 0 && ucount > o.MaxRetainedPerUser && ucount > u.count) &&
		!(o.MaxRetainedBytesPerUser > 0 && ubytes > o.MaxRetainedBytesPerUser && ubytes > u.bytes)
}

func (q *retainQuota) add(m *message) {
	cost := retainCost(m)
	q.count++
	q.bytes += cost
	if m.owner == "" {
		return
	}
	if q.owners == nil {
		q.owners = make(map[string]*retainUsage)
	}
	u := q.owners[m.owner]
	if u == nil {
		u = &retainUsage{}
		q.owners[m.owner] = u
	}
	u.count++
	u.bytes += cost
}

func (q *retainQuota) remove(m *message) {
	cost := retainCost(m)
	q.count--
	q.bytes -= cost
	if u := q.owners[m.owner]; u != nil {
		u.count--
		u.bytes -= cost
		if u.count == 0 {
			delete(q.owners, m.owner)
		}
	}
}
