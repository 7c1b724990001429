package pebble

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// SaveSession stores s, replacing the session of the same client. The
// inbound identifiers are not part of the record: see AddInbound.
func (s *Store) SaveSession(sess *store.Session) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)
	*kb = sessionKey((*kb)[:0], sess.ClientID)
	*vb = appendSession((*vb)[:0], sess)
	if err := s.db.Set(*kb, *vb, pebble.NoSync); err != nil {
		return fmt.Errorf("store/pebble: writing session %q in %s: %w", sess.ClientID, s.dir, err)
	}
	s.wrote()
	return nil
}

// DeleteSession removes the session, its queue and its inbound
// identifiers, in one batch.
func (s *Store) DeleteSession(clientID string) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	var t refTxn
	t.init(s)
	defer t.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteQueue(&t, clientID); err != nil {
		return err
	}
	if err := s.deleteInbound(t.b, clientID); err != nil {
		return err
	}
	t.b.Delete(sessionKey(nil, clientID), nil)
	if err := t.commit(); err != nil {
		return err
	}
	delete(s.lastSeq, clientID)
	return nil
}

// LoadSessions calls fn for each session, in client identifier order,
// with its inbound identifiers in order.
func (s *Store) LoadSessions(fn func(*store.Session) error) error {
	var list []*store.Session
	err := s.scanPrefix(prefixSession, func(k, v []byte) error {
		sess, err := decodeSession(string(k[len(prefixSession):]), v)
		if err != nil {
			return s.recordErr(k, err)
		}
		list = append(list, sess)
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.loadInbound(list); err != nil {
		return err
	}
	for _, sess := range list {
		if err := fn(sess); err != nil {
			return err
		}
	}
	return nil
}

// scanPrefix calls fn for each record under prefix. fn must not call the
// store: closeMu is held.
func (s *Store) scanPrefix(prefix string, fn func(k, v []byte) error) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	defer func() {
		// Pebble panics on some damage it finds in a table.
		if r := recover(); r != nil {
			err = s.damaged(fmt.Errorf("reading %s records: %v", prefix, r))
		}
	}()
	p := []byte(prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return s.readErr(err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return s.readErr(err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	return nil
}
