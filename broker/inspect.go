package broker

import (
	"sort"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Introspection and administration, for the admin API and embedders.

// ClientInfo describes one session and its connection, if any.
type ClientInfo struct {
	ClientID      string        `json:"client_id"`
	Connected     bool          `json:"connected"`
	Remote        string        `json:"remote,omitempty"`
	Listener      string        `json:"listener,omitempty"`
	Username      string        `json:"username,omitempty"`
	Version       byte          `json:"protocol_version"`
	KeepAlive     time.Duration `json:"keep_alive_ns,omitempty"`
	Persistent    bool          `json:"persistent"`
	Subscriptions int           `json:"subscriptions"`
	Inflight      int           `json:"inflight"`
	Queued        int           `json:"queued"`         // waiting, in memory and on disk
	QueuedOnDisk  int           `json:"queued_on_disk"` // of which only in the store
	QueuedBytes   int64         `json:"queued_bytes"`   // bytes of the queued messages, in memory and on disk
	QueuedMemory  int64         `json:"queued_memory"`  // of which in memory
	Dropped       uint64        `json:"dropped"`
	Disconnected  time.Time     `json:"disconnected_at,omitzero"`
}

// SubscriptionInfo is one subscription of one session.
type SubscriptionInfo struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	ID                uint32 `json:"subscription_id,omitempty"`
}

// RetainedInfo is one retained message.
type RetainedInfo struct {
	Topic   string    `json:"topic"`
	Payload []byte    `json:"payload"`
	QoS     byte      `json:"qos"`
	Created time.Time `json:"created"`
}

func (sess *session) info() ClientInfo {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	ci := ClientInfo{
		ClientID:      sess.id,
		Version:       sess.version,
		Persistent:    sess.persistent,
		Subscriptions: len(sess.subs),
		Inflight:      len(sess.inflight),
		Queued:        sess.queue.len() + sess.spilled,
		QueuedOnDisk:  sess.spilled,
		QueuedBytes:   sess.queue.bytes + sess.spilledBytes,
		QueuedMemory:  sess.queue.bytes,
		Dropped:       sess.dropped,
		Disconnected:  sess.disconnected,
	}
	if c := sess.conn.Load(); c != nil {
		ci.Connected = true
		ci.Remote = c.nc.RemoteAddr().String()
		ci.Listener = c.lo.Name
		ci.KeepAlive = c.keepAlive * 2 / 3
		if c.authc != nil {
			ci.Username = c.authc.Username
		}
	}
	return ci
}

func (s *Server) sessionList() []*session {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	return list
}

// Clients lists every session, connected or not, by client identifier.
func (s *Server) Clients() []ClientInfo {
	list := s.sessionList()
	out := make([]ClientInfo, len(list))
	for i, sess := range list {
		out[i] = sess.info()
	}
	return out
}

// Client describes one session and lists its subscriptions.
func (s *Server) Client(id string) (ClientInfo, []SubscriptionInfo, bool) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return ClientInfo{}, nil, false
	}
	return sess.info(), sess.subscriptions(), true
}

func (sess *session) subscriptions() []SubscriptionInfo {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	out := make([]SubscriptionInfo, 0, len(sess.subs))
	for _, sub := range sess.subs {
		out = append(out, SubscriptionInfo{
			ClientID: sess.id, Filter: sub.Filter, QoS: sub.QoS, NoLocal: sub.NoLocal,
			RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, ID: sub.ID,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Filter < out[j].Filter })
	return out
}

// Subscriptions lists every subscription of every session.
func (s *Server) Subscriptions() []SubscriptionInfo {
	var out []SubscriptionInfo
	for _, sess := range s.sessionList() {
		out = append(out, sess.subscriptions()...)
	}
	return out
}

// Disconnect closes a client's connection (5.0 clients hear 0x98
// Administrative action); with discard, its session ends too. It reports
// whether the client identifier was known.
func (s *Server) Disconnect(id string, discard bool) bool {
	s.mu.Lock()
	sess := s.sessions[id]
	if sess == nil {
		s.mu.Unlock()
		return false
	}
	var will *message
	if discard {
		sess.mu.Lock()
		sess.persistent = false // the connection's end discards it
		if sess.conn.Load() == nil {
			will, sess.pendingWill = sess.pendingWill, nil
		}
		sess.mu.Unlock()
		if sess.conn.Load() == nil {
			s.discardLocked(sess)
			s.emitSession(EventSessionEnded, sess, "discarded")
		}
	}
	s.mu.Unlock()
	if will != nil {
		s.publishWill(id, will) // the session ended before the will's delay [MQTT-3.1.2-8]
	}
	if discard {
		s.syncStore()
	}
	if c := sess.conn.Load(); c != nil {
		s.log.Info("disconnecting client: administrative action", "client", id)
		if c.version >= packet.V5 {
			c.closeWith(&packet.Disconnect{ReasonCode: packet.AdministrativeAction})
		} else {
			c.closeWith(nil)
		}
	}
	return true
}

// Retained lists the retained messages whose topics match filter ("#" for
// all, which leaves out $ topics as MQTT does).
func (s *Server) Retained(filter string) ([]RetainedInfo, error) {
	if err := packet.ValidTopicFilter(filter); err != nil {
		return nil, err
	}
	if _, _, shared := topic.ParseShare(filter); shared {
		return nil, packet.ErrShareInvalid
	}
	var (
		out     []RetainedInfo
		expired []*message
		now     = time.Now()
	)
	s.retained.Match(filter, func(_ string, m *message) bool {
		if m.expired(now) {
			expired = append(expired, m)
			return true
		}
		out = append(out, RetainedInfo{Topic: m.topic, Payload: m.payload, QoS: m.qos, Created: m.created})
		return true
	})
	for _, m := range expired {
		s.expireRetained(m) // [MQTT-3.3.2-5]
	}
	if len(expired) > 0 {
		s.syncStore()
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Topic, out[j].Topic) < 0 })
	return out, nil
}

// DeleteRetained removes the retained message of a topic; it reports
// whether there was one.
func (s *Server) DeleteRetained(topicName string) bool {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	if _, ok := s.retained.Get(topicName); !ok {
		return false
	}
	ok := s.retainLocked(&message{topic: topicName})
	s.syncStore()
	return ok
}
