package pebble

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// SetRetained stores m as the retained message of its topic.
func (s *Store) SetRetained(m *store.Message) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)
	if n := messageSize(m); cap(*vb) < n {
		*vb = make([]byte, 0, n)
	}
	b := s.db.NewBatch()
	defer b.Close()
	setRetained(b, kb, vb, m)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: writing retained message %q in %s: %w", m.Topic, s.dir, err)
	}
	s.wrote()
	return nil
}

// DeleteRetained removes the retained message of topic.
func (s *Store) DeleteRetained(topic string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb := getBuf()
	defer putBuf(kb)
	b := s.db.NewBatch()
	defer b.Close()
	deleteRetained(b, kb, topic)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: deleting retained message %q in %s: %w", topic, s.dir, err)
	}
	s.wrote()
	return nil
}

// LoadRetained calls fn for each retained message, in topic order.
func (s *Store) LoadRetained(fn func(*store.Message) error) error {
	var list []*store.Message
	err := s.scanPrefix(prefixRetained, func(k, v []byte) error {
		m, err := decodeMessage(v)
		if err != nil {
			return s.recordErr(k, err)
		}
		if m.Topic != string(k[len(prefixRetained):]) {
			return s.recordErr(k, fmt.Errorf("%w: holds topic %q", errBad, m.Topic))
		}
		list = append(list, m)
		return nil
	})
	if err != nil {
		return err
	}
	sources, err := s.loadSources()
	if err != nil {
		return err
	}
	for _, m := range list {
		if r, ok := sources[m.Topic]; ok && r.id == m.ID {
			m.Source = r.src
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
