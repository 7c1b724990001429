package pebble

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Key prefixes; doc.go describes the layout.
const (
	prefixSession  = "s/"
	prefixQueue    = "q/"
	prefixMessage  = "m/"
	prefixRetained = "r/"
	prefixInbound  = "i/"
	prefixDelayed  = "d/"
	keyFormat      = "_format"
	keyHint        = "_hint"
)

// maxClientID is the longest client identifier a queue key can hold: its
// length is written in two bytes. MQTT strings are no longer.
const maxClientID = 65535

func sessionKey(dst []byte, clientID string) []byte {
	return append(append(dst, prefixSession...), clientID...)
}

func retainedKey(dst []byte, topic string) []byte {
	return append(append(dst, prefixRetained...), topic...)
}

func messageKey(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixMessage...), id)
}

// queuePrefix is the prefix of the keys of clientID's queue. The length
// keeps the queues of "a" and "a/b" apart.
func queuePrefix(dst []byte, clientID string) []byte {
	dst = binary.BigEndian.AppendUint16(append(dst, prefixQueue...), uint16(len(clientID)))
	return append(dst, clientID...)
}

// queueKey is the key of entry seq of clientID's queue: big-endian, so
// that the keys sort by Seq.
func queueKey(dst []byte, clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(queuePrefix(dst, clientID), seq)
}

// inboundPrefix is the prefix of the keys of clientID's inbound QoS 2
// identifiers, length-prefixed like a queue's.
func inboundPrefix(dst []byte, clientID string) []byte {
	dst = binary.BigEndian.AppendUint16(append(dst, prefixInbound...), uint16(len(clientID)))
	return append(dst, clientID...)
}

// inboundKey is the key of inbound QoS 2 identifier id of clientID.
func inboundKey(dst []byte, clientID string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(inboundPrefix(dst, clientID), id)
}

// parseQueueKey splits a queue key into the client identifier and Seq.
func parseQueueKey(k []byte) (clientID []byte, seq uint64, ok bool) {
	if len(k) < len(prefixQueue)+2+8 || string(k[:len(prefixQueue)]) != prefixQueue {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(k[len(prefixQueue):]))
	rest := k[len(prefixQueue)+2:]
	if len(rest) != n+8 {
		return nil, 0, false
	}
	return rest[:n], binary.BigEndian.Uint64(rest[n:]), true
}

// prefixEnd returns the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// keyString names a key for an error message: q/"client"/42, m/7, s/"client".
func keyString(k []byte) string {
	s := string(k)
	switch {
	case len(k) == len(prefixMessage)+8 && s[:2] == prefixMessage:
		return prefixMessage + strconv.FormatUint(binary.BigEndian.Uint64(k[2:]), 10)
	case len(k) >= 2 && s[:2] == prefixQueue:
		if id, seq, ok := parseQueueKey(k); ok {
			return fmt.Sprintf("%s%q/%d", prefixQueue, id, seq)
		}
	case len(k) >= 6 && s[:2] == prefixInbound && int(binary.BigEndian.Uint16(k[2:]))+6 == len(k):
		return fmt.Sprintf("%s%q/%d", prefixInbound, k[4:len(k)-2], binary.BigEndian.Uint16(k[len(k)-2:]))
	case len(k) >= 2 && (s[:2] == prefixSession || s[:2] == prefixRetained):
		return s[:2] + strconv.Quote(s[2:])
	}
	return strconv.Quote(s)
}

// msgID returns the ID in a message key.
func msgID(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(prefixMessage):]) }

// prefixSource keys the publisher of a retained message, apart from its
// record so that the record's format stays as it was: p/<topic>. The value
// names the message ID it belongs to, so that one left behind by an older
// Gannet, which does not know these keys, is not taken for the publisher of
// a newer message.
const prefixSource = "p/"

func sourceKey(dst []byte, topic string) []byte {
	return append(append(dst, prefixSource...), topic...)
}
