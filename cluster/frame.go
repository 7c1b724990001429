package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// Live messages between nodes travel in frames: one NATS message, on the
// subject of its topic ("gannet.NAME.m.SUBJECT"), without NATS headers,
// whose payload is
//
//	frameMark                 1 byte, never the first byte of an MQTT packet
//	uvarint n, n bytes        the publishing node's instance (origin)
//	uvarint                   the origin's count of frames, which only grows
//	then, once or more:
//	  uvarint                 the message's sequence in the messages stream (0: not stored there)
//	  a 5.0 PUBLISH packet    complete, fixed header included
//
// The messages of one frame all have the frame's topic, in the order they
// were published here. A node that receives a frame through several of
// its filters delivers it once: the origin's frame count tells repeats
// apart (dispatchOne). Header-less frames cost the NATS client and server
// far less per message than a NATS message with headers (a map of header
// values parsed and allocated on every hop), and a frame of many messages
// crosses each NATS hop, its subject matching and the receiving node's
// dispatch queue once for all of them (forwarder.go).
//
// Messages that a node re-publishes from the messages stream for a shared
// group (shared.go) keep the older form: one PUBLISH as the payload and
// headers, which dispatchOne still reads.
const frameMark = 0x01

// errFrame reports a frame that is not one (another version of Gannet?).
var errFrame = errors.New("cluster: malformed live frame")

// frameHead reads a frame's origin and count. ok is false if b is not a
// frame (the older header form); err if it is a malformed one.
func frameHead(b []byte) (origin []byte, seq uint64, rest []byte, ok bool, err error) {
	if len(b) == 0 || b[0] != frameMark {
		return nil, 0, nil, false, nil
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, 0, nil, true, errFrame
	}
	origin, b = b[k:k+int(n)], b[k+int(n):]
	seq, k = binary.Uvarint(b)
	if k <= 0 {
		return nil, 0, nil, true, errFrame
	}
	return origin, seq, b[k:], true, nil
}

// nextPacket reads the next message of a frame's rest: its stream sequence
// and its PUBLISH, decoded by d (which may reuse its packet and alias
// rest). done is true at the end of the frame.
func nextPacket(d *packet.Decoder, rest []byte) (p *packet.Publish, streamSeq uint64, next []byte, done bool, err error) {
	if len(rest) == 0 {
		return nil, 0, nil, true, nil
	}
	streamSeq, k := binary.Uvarint(rest)
	if k <= 0 {
		return nil, 0, nil, false, errFrame
	}
	rest = rest[k:]
	pk, n, err := d.Decode(rest)
	if err != nil {
		return nil, 0, nil, false, err
	}
	pub, isPub := pk.(*packet.Publish)
	if pk == nil || !isPub {
		return nil, 0, nil, false, errFrame
	}
	return pub, streamSeq, rest[n:], false, nil
}

// appendRouted appends the routed form of p to dst: a 5.0 PUBLISH packet
// (the form stored in JetStream too, see encode).
func appendRouted(dst []byte, p *packet.Publish) ([]byte, error) {
	q := *p
	q.PacketID = 0
	q.Dup = false
	if q.QoS > 0 {
		q.PacketID = 1 // a 5.0 PUBLISH at QoS > 0 carries one; unused
	}
	return q.Append(dst, packet.V5)
}

// liveFrameLimit bounds the bytes of messages one frame collects before
// it goes out (a single larger message goes alone).
const liveFrameLimit = 64 << 10

// liveIdleTopics bounds the topics the forwarder keeps a frame for after
// they went out: past it they are all forgotten.
const liveIdleTopics = 1024

// liveKeepBuffer is the largest buffer a frame keeps once it went out
// while the forwarder knows more than liveFewTopics topics: the frames
// then hold at most 8 MiB, and with few topics at most liveFewTopics
// times two liveFrameLimit (8 MiB), so that a busy topic does not grow
// its buffer again for every frame.
const (
	liveKeepBuffer = 8 << 10
	liveFewTopics  = 64
)

// liveReportEvery spaces the warnings about frames NATS refused.
const liveReportEvery = 10 * time.Second
