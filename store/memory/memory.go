// Package memory is a store.Store that keeps everything in RAM: for
// ephemeral brokers and for tests. It survives a broker restart within the
// same process, not a process restart.
package memory

import (
	"sort"
	"sync"

	"github.com/gannet-mqtt/gannet/store"
)

// Store is an in-memory store.Store, safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	sessions map[string]*store.Session
	queues   map[string]map[uint64]store.Entry // by value: no allocation per queued message
	retained map[string]*store.Message
	inbound  map[string]map[uint16]struct{}
	delayed  map[uint64]*store.Delayed
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.InboundStore = (*Store)(nil)
	_ store.DelayedStore = (*Store)(nil)
	_ store.Batcher      = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		sessions: make(map[string]*store.Session),
		queues:   make(map[string]map[uint64]store.Entry),
		retained: make(map[string]*store.Message),
		inbound:  make(map[string]map[uint16]struct{}),
		delayed:  make(map[uint64]*store.Delayed),
	}
}

func copySession(s *store.Session) *store.Session {
	c := *s
	c.Subscriptions = append([]store.Subscription(nil), s.Subscriptions...)
	return &c
}

func copyEntry(e *store.Entry) *store.Entry {
	c := entryValue(e)
	return &c
}

// entryValue is a copy of e that shares nothing with it but the message.
func entryValue(e *store.Entry) store.Entry {
	c := *e
	c.SubIDs = append([]uint32(nil), e.SubIDs...)
	return c
}

func (m *Store) SaveSession(s *store.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ClientID] = copySession(s)
	return nil
}

func (m *Store) DeleteSession(clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, clientID)
	delete(m.queues, clientID)
	delete(m.inbound, clientID)
	return nil
}

func (m *Store) AddInbound(clientID string, id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inbound[clientID] == nil {
		m.inbound[clientID] = make(map[uint16]struct{})
	}
	m.inbound[clientID][id] = struct{}{}
	return nil
}

func (m *Store) RemoveInbound(clientID string, id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inbound[clientID], id)
	return nil
}

func (m *Store) LoadSessions(fn func(*store.Session) error) error {
	m.mu.Lock()
	list := make([]*store.Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		c := copySession(s)
		c.Inbound = nil
		for id := range m.inbound[s.ClientID] {
			c.Inbound = append(c.Inbound, id)
		}
		sort.Slice(c.Inbound, func(i, j int) bool { return c.Inbound[i] < c.Inbound[j] })
		list = append(list, c)
	}
	m.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ClientID < list[j].ClientID })
	for _, s := range list {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (m *Store) Append(clientID string, entries ...*store.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appendLocked(clientID, entries)
	return nil
}

// WriteBatch applies b under one lock: no reader sees part of it.
func (m *Store) WriteBatch(b *store.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range b.Queues {
		m.appendLocked(q.ClientID, q.Entries)
	}
	if b.DeleteRetained != "" {
		delete(m.retained, b.DeleteRetained)
	}
	if b.Retained != nil {
		m.retained[b.Retained.Topic] = b.Retained
	}
	for _, in := range b.Inbound {
		if m.inbound[in.ClientID] == nil {
			m.inbound[in.ClientID] = make(map[uint16]struct{})
		}
		m.inbound[in.ClientID][in.ID] = struct{}{}
	}
	return nil
}

// appendLocked adds entries to a queue. m.mu held.
func (m *Store) appendLocked(clientID string, entries []*store.Entry) {
	q := m.queues[clientID]
	if q == nil {
		q = make(map[uint64]store.Entry)
		m.queues[clientID] = q
	}
	for _, e := range entries {
		q[e.Seq] = entryValue(e)
	}
}

func (m *Store) Update(clientID string, e *store.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[clientID]
	if _, ok := q[e.Seq]; !ok {
		return store.ErrNotFound
	}
	q[e.Seq] = entryValue(e)
	return nil
}

func (m *Store) Remove(clientID string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.queues[clientID], seq)
	return nil
}

func (m *Store) LoadQueue(clientID string, fn func(*store.Entry) error) error {
	m.mu.Lock()
	q := m.queues[clientID]
	list := make([]*store.Entry, 0, len(q))
	for _, e := range q {
		list = append(list, copyEntry(&e))
	}
	m.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Seq < list[j].Seq })
	for _, e := range list {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (m *Store) SetRetained(msg *store.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained[msg.Topic] = msg
	return nil
}

func (m *Store) DeleteRetained(topic string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.retained, topic)
	return nil
}

func (m *Store) LoadRetained(fn func(*store.Message) error) error {
	m.mu.Lock()
	list := make([]*store.Message, 0, len(m.retained))
	for _, r := range m.retained {
		list = append(list, r)
	}
	m.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Topic < list[j].Topic })
	for _, r := range list {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing: the memory is the garbage collector's.
func (m *Store) Close() error { return nil }

// AddDelayed keeps a message held until d.Due.
func (m *Store) AddDelayed(d *store.Delayed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *d
	msg := *d.Message
	c.Message = &msg
	m.delayed[d.ID] = &c
	return nil
}

// RemoveDelayed forgets held message id.
func (m *Store) RemoveDelayed(id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.delayed, id)
	return nil
}

// LoadDelayed calls fn for each held message, in ID order.
func (m *Store) LoadDelayed(fn func(*store.Delayed) error) error {
	m.mu.Lock()
	list := make([]*store.Delayed, 0, len(m.delayed))
	for _, d := range m.delayed {
		list = append(list, d)
	}
	m.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	for _, d := range list {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}
