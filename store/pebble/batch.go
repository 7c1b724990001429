package pebble

import "github.com/gannet-mqtt/gannet/store"

var _ store.Batcher = (*Store)(nil)

// WriteBatch applies b in one Pebble batch: one record of the log, which a
// crash keeps whole or not at all.
func (s *Store) WriteBatch(b *store.Batch) error {
	if b.Empty() {
		return nil
	}
	queues := mergeQueues(b.Queues)
	for _, q := range queues {
		if err := checkClientID(q.ClientID); err != nil {
			return err
		}
	}
	for _, in := range b.Inbound {
		if err := checkClientID(in.ClientID); err != nil {
			return err
		}
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if len(queues) > 0 {
		s.dropCache()
	}
	var t refTxn
	t.init(s)
	defer t.close()
	kb, vb := getBuf(), getBuf()
	defer putBuf(kb)
	defer putBuf(vb)

	if b.DeleteRetained != "" {
		deleteRetained(t.b, kb, b.DeleteRetained)
	}
	if m := b.Retained; m != nil {
		setRetained(t.b, kb, vb, m)
	}
	for _, in := range b.Inbound {
		*kb = inboundKey((*kb)[:0], in.ClientID, in.ID)
		t.b.Set(*kb, nil, nil)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	last := make([]uint64, len(queues))
	for i, q := range queues {
		l, err := s.appendLocked(&t, kb, vb, q.ClientID, q.Entries)
		if err != nil {
			return err
		}
		last[i] = l
	}
	if err := t.commit(); err != nil {
		return err
	}
	for i, q := range queues {
		if len(q.Entries) > 0 {
			s.lastSeq[q.ClientID] = last[i]
		}
	}
	return nil
}

// mergeQueues returns qs with the entries of each client together, in
// order, so that appendLocked sees every earlier entry of the batch that
// an entry may replace.
func mergeQueues(qs []store.QueueAppend) []store.QueueAppend {
	if len(qs) < 2 {
		return qs
	}
	at := make(map[string]int, len(qs))
	out := make([]store.QueueAppend, 0, len(qs))
	for _, q := range qs {
		i, ok := at[q.ClientID]
		if !ok {
			at[q.ClientID] = len(out)
			out = append(out, store.QueueAppend{ClientID: q.ClientID, Entries: q.Entries})
			continue
		}
		out[i].Entries = append(out[i].Entries[:len(out[i].Entries):len(out[i].Entries)], q.Entries...)
	}
	return out
}
