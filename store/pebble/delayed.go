package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// Delayed messages are keys of their own, d/<id>, each holding its due
// time and the message: the broker's delayed publish survives a restart.

var _ store.DelayedStore = (*Store)(nil)

func delayedKey(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixDelayed...), id)
}

// AddDelayed stores a message held until d.Due.
func (s *Store) AddDelayed(d *store.Delayed) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)
	*kb = delayedKey((*kb)[:0], d.ID)
	if n := 16 + messageSize(d.Message); cap(*vb) < n {
		*vb = make([]byte, 0, n)
	}
	*vb = appendMessage(appendTime((*vb)[:0], d.Due), d.Message)
	if err := s.db.Set(*kb, *vb, pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: writing delayed message %d for %q in %s: %w", d.ID, d.Message.Topic, s.dir, err)
	}
	s.wrote()
	return nil
}

// RemoveDelayed deletes held message id.
func (s *Store) RemoveDelayed(id uint64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb := getBuf()
	defer putBuf(kb)
	*kb = delayedKey((*kb)[:0], id)
	if err := s.db.Delete(*kb, pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: deleting delayed message %d in %s: %w", id, s.dir, err)
	}
	s.wrote()
	return nil
}

// LoadDelayed calls fn for each held message, in ID order.
func (s *Store) LoadDelayed(fn func(*store.Delayed) error) error {
	var list []*store.Delayed
	err := s.scanPrefix(prefixDelayed, func(k, v []byte) error {
		if len(k) != len(prefixDelayed)+8 {
			return s.recordErr(k, errors.New("malformed delayed message key"))
		}
		d := decoder{b: v}
		due := d.time()
		if d.err != nil {
			return s.recordErr(k, d.err)
		}
		m, err := decodeMessage(d.b)
		if err != nil {
			return s.recordErr(k, err)
		}
		list = append(list, &store.Delayed{ID: binary.BigEndian.Uint64(k[len(prefixDelayed):]), Due: due, Message: m})
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range list {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}
