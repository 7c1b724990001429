package pebble

import (
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gannet-mqtt/gannet/store"
)

// appendSource encodes the publisher of retained message id: the ID, then
// four length-prefixed strings.
func appendSource(dst []byte, id uint64, src *store.Source) []byte {
	dst = binary.BigEndian.AppendUint64(dst, id)
	for _, s := range []string{src.ClientID, src.Username, src.Listener, src.CertCommonName} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

var errBadSource = errors.New("malformed retained message source")

func decodeSource(v []byte) (uint64, *store.Source, error) {
	if len(v) < 8 {
		return 0, nil, errBadSource
	}
	id := binary.BigEndian.Uint64(v)
	v = v[8:]
	var f [4]string
	for i := range f {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return 0, nil, errBadSource
		}
		f[i] = string(v[k : k+int(n)])
		v = v[k+int(n):]
	}
	return id, &store.Source{ClientID: f[0], Username: f[1], Listener: f[2], CertCommonName: f[3]}, nil
}

// setRetained adds to b the record of m and its source (or the deletion
// of a source left from an earlier message). kb and vb are scratch.
func setRetained(b *pebble.Batch, kb, vb *[]byte, m *store.Message) {
	*kb = retainedKey((*kb)[:0], m.Topic)
	*vb = appendMessage((*vb)[:0], m)
	b.Set(*kb, *vb, nil)
	*kb = sourceKey((*kb)[:0], m.Topic)
	if m.Source != nil {
		*vb = appendSource((*vb)[:0], m.ID, m.Source)
		b.Set(*kb, *vb, nil)
	} else {
		b.Delete(*kb, nil)
	}
}

// deleteRetained adds to b the deletion of topic's record and source.
func deleteRetained(b *pebble.Batch, kb *[]byte, topic string) {
	*kb = retainedKey((*kb)[:0], topic)
	b.Delete(*kb, nil)
	*kb = sourceKey((*kb)[:0], topic)
	b.Delete(*kb, nil)
}

// loadSources returns the publishers of retained messages by topic.
func (s *Store) loadSources() (map[string]sourceRec, error) {
	out := make(map[string]sourceRec)
	err := s.scanPrefix(prefixSource, func(k, v []byte) error {
		id, src, err := decodeSource(v)
		if err != nil {
			return s.recordErr(k, err)
		}
		out[string(k[len(prefixSource):])] = sourceRec{id, src}
		return nil
	})
	return out, err
}

type sourceRec struct {
	id  uint64
	src *store.Source
}
