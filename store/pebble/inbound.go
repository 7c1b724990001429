package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// The identifiers of inbound QoS 2 messages awaiting PUBREL are keys of
// their own, i/<client>/<id>, so that SaveSession need not know them:
// AddInbound and RemoveInbound write one key, LoadSessions fills
// Session.Inbound, DeleteSession deletes them with the session.

var _ store.InboundStore = (*Store)(nil)

// AddInbound records that QoS 2 message id from clientID awaits PUBREL.
func (s *Store) AddInbound(clientID string, id uint16) error {
	return s.inbound(clientID, id, true)
}

// RemoveInbound forgets inbound QoS 2 message id of clientID.
func (s *Store) RemoveInbound(clientID string, id uint16) error {
	return s.inbound(clientID, id, false)
}

func (s *Store) inbound(clientID string, id uint16, add bool) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	kb := getBuf()
	defer putBuf(kb)
	*kb = inboundKey((*kb)[:0], clientID, id)
	var err error
	if add {
		err = s.db.Set(*kb, nil, pebble.NoSync)
	} else {
		err = s.db.Delete(*kb, pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("store/pebble: writing inbound identifier %d of %q in %s: %w", id, clientID, s.dir, err)
	}
	s.wrote()
	return nil
}

// loadInbound fills the Inbound of the sessions, in identifier order.
func (s *Store) loadInbound(sessions []*store.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	byID := make(map[string]*store.Session, len(sessions))
	for _, sess := range sessions {
		byID[sess.ClientID] = sess
	}
	var last *store.Session
	return s.scanPrefix(prefixInbound, func(k, _ []byte) error {
		rest := k[len(prefixInbound):]
		if len(rest) < 4 || int(binary.BigEndian.Uint16(rest))+4 != len(rest) {
			return s.recordErr(k, errors.New("malformed inbound key"))
		}
		client := rest[2 : len(rest)-2]
		if last == nil || last.ClientID != string(client) {
			last = byID[string(client)]
		}
		if last != nil { // identifiers of a client without a session are ignored
			last.Inbound = append(last.Inbound, binary.BigEndian.Uint16(rest[len(rest)-2:]))
		}
		return nil
	})
}

// deleteInbound adds to b the deletion of clientID's inbound identifiers.
// closeMu held.
func (s *Store) deleteInbound(b *pebble.Batch, clientID string) error {
	p := inboundPrefix(nil, clientID)
	end := prefixEnd(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: end})
	if err != nil {
		return s.readErr(err)
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return s.readErr(err)
	}
	if found {
		b.DeleteRange(p, end, nil)
	}
	return nil
}
