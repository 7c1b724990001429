package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// formatVersion is the version of the encoding below, kept under the
// _format key. A change that an older Gannet cannot read takes a new
// version, and Open refuses a directory written with a newer one.
const formatVersion = 1

// The record encodings (doc.go has the overview). uvarint and varint are
// encoding/binary's; a string or byte string is a uvarint length and the
// bytes; a time is a uvarint n, 0 for the zero time, else n-1 nanoseconds
// followed by the varint Unix seconds.

// Flag bits of an entry's first byte.
const (
	entryHasMessage = 1 << 0
	entryRetain     = 1 << 1
	entryQoSShift   = 2 // two bits
	entryStateShift = 4 // two bits
)

// Flag bits of a message's first byte.
const (
	msgQoSMask = 3
	msgRetain  = 1 << 2
)

// Bits of a subscription's options byte: QoS, No Local, Retain As
// Published, Retain Handling, as in a SUBSCRIBE packet.
const (
	subQoSMask     = 3
	subNoLocal     = 1 << 2
	subRAP         = 1 << 3
	subRetainShift = 4
)

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(t.Nanosecond())+1)
	return binary.AppendVarint(dst, t.Unix())
}

// appendSession encodes s: Version, Expiry (varint nanoseconds),
// Disconnected, then the subscriptions: count, and for each the filter, the
// options byte and the identifier (uvarint); then the Owner, when there
// is one (records written before owners were kept end after the
// subscriptions).
func appendSession(dst []byte, s *store.Session) []byte {
	dst = append(dst, s.Version)
	dst = binary.AppendVarint(dst, int64(s.Expiry))
	dst = appendTime(dst, s.Disconnected)
	dst = binary.AppendUvarint(dst, uint64(len(s.Subscriptions)))
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		dst = appendString(dst, sub.Filter)
		o := sub.QoS&subQoSMask | sub.RetainHandling&3<<subRetainShift
		if sub.NoLocal {
			o |= subNoLocal
		}
		if sub.RetainAsPublished {
			o |= subRAP
		}
		dst = append(dst, o)
		dst = binary.AppendUvarint(dst, uint64(sub.ID))
	}
	if s.Owner != "" {
		dst = appendString(dst, s.Owner)
	}
	return dst
}

// appendEntry encodes e: flags (has message, Retain, QoS, State), the
// message ID when there is a message, PacketID and the subscription
// identifiers (count, each a uvarint).
func appendEntry(dst []byte, e *store.Entry) []byte {
	f := e.QoS&3<<entryQoSShift | byte(e.State)&3<<entryStateShift
	if e.Message != nil {
		f |= entryHasMessage
	}
	if e.Retain {
		f |= entryRetain
	}
	dst = append(dst, f)
	if e.Message != nil {
		dst = binary.AppendUvarint(dst, e.Message.ID)
	}
	dst = binary.AppendUvarint(dst, uint64(e.PacketID))
	dst = binary.AppendUvarint(dst, uint64(len(e.SubIDs)))
	for _, id := range e.SubIDs {
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	return dst
}

// appendMessage encodes m: flags (QoS, Retain), ID, Topic, Created,
// Expiry, the properties, and the payload as the rest of the value.
func appendMessage(dst []byte, m *store.Message) []byte {
	f := m.QoS & msgQoSMask
	if m.Retain {
		f |= msgRetain
	}
	dst = append(dst, f)
	dst = binary.AppendUvarint(dst, m.ID)
	dst = appendString(dst, m.Topic)
	dst = appendTime(dst, m.Created)
	dst = appendTime(dst, m.Expiry)
	dst = appendProps(dst, &m.Properties)
	return append(dst, m.Payload...)
}

// messageSize bounds the length of m's encoding, to size a buffer.
func messageSize(m *store.Message) int {
	p := &m.Properties
	n := 64 + len(m.Topic) + len(m.Payload) + len(p.ContentType) + len(p.ResponseTopic) +
		len(p.CorrelationData) + len(p.AssignedClientID) + len(p.AuthMethod) + len(p.AuthData) +
		len(p.ResponseInfo) + len(p.ServerReference) + len(p.ReasonString) + 5*len(p.SubscriptionIDs) + 100
	for _, u := range p.User {
		n += 20 + len(u.Key) + len(u.Value)
	}
	return n
}

// Kinds of the single-valued properties.
const (
	propNone = iota
	propUint
	propString
	propBinary
)

var propKinds = [64]uint8{
	packet.PropPayloadFormat:        propUint,
	packet.PropMessageExpiry:        propUint,
	packet.PropContentType:          propString,
	packet.PropResponseTopic:        propString,
	packet.PropCorrelationData:      propBinary,
	packet.PropSessionExpiry:        propUint,
	packet.PropAssignedClientID:     propString,
	packet.PropServerKeepAlive:      propUint,
	packet.PropAuthMethod:           propString,
	packet.PropAuthData:             propBinary,
	packet.PropRequestProblemInfo:   propUint,
	packet.PropWillDelay:            propUint,
	packet.PropRequestResponseInfo:  propUint,
	packet.PropResponseInfo:         propString,
	packet.PropServerReference:      propString,
	packet.PropReasonString:         propString,
	packet.PropReceiveMaximum:       propUint,
	packet.PropTopicAliasMaximum:    propUint,
	packet.PropTopicAlias:           propUint,
	packet.PropMaximumQoS:           propUint,
	packet.PropRetainAvailable:      propUint,
	packet.PropMaximumPacketSize:    propUint,
	packet.PropWildcardSubAvailable: propUint,
	packet.PropSubIDAvailable:       propUint,
	packet.PropSharedSubAvailable:   propUint,
}

// knownProps is the set of single-valued properties the format holds.
var knownProps = func() packet.PropSet {
	var s packet.PropSet
	for id, k := range propKinds {
		if k != propNone {
			s.Add(packet.PropID(id))
		}
	}
	return s
}()

// appendProps encodes p: the set of present single-valued properties
// (uvarint bit set, bit n for identifier n), their values in identifier
// order (a number as a uvarint, a string or binary value with its length),
// the subscription identifiers (count, each a uvarint) and the user
// properties (count, each a key and a value), in order.
func appendProps(dst []byte, p *packet.Properties) []byte {
	set := p.Present & knownProps
	dst = binary.AppendUvarint(dst, uint64(set))
	for s := set; s != 0; s &= s - 1 {
		id := packet.PropID(bits.TrailingZeros64(uint64(s)))
		switch propKinds[id] {
		case propUint:
			dst = binary.AppendUvarint(dst, uint64(uintProp(p, id)))
		case propString:
			dst = appendString(dst, stringProp(p, id))
		case propBinary:
			dst = appendBytes(dst, binaryProp(p, id))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.SubscriptionIDs)))
	for _, id := range p.SubscriptionIDs {
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.User)))
	for _, u := range p.User {
		dst = appendString(dst, u.Key)
		dst = appendString(dst, u.Value)
	}
	return dst
}

func uintProp(p *packet.Properties, id packet.PropID) uint32 {
	switch id {
	case packet.PropPayloadFormat:
		return uint32(p.PayloadFormat)
	case packet.PropMessageExpiry:
		return p.MessageExpiry
	case packet.PropSessionExpiry:
		return p.SessionExpiry
	case packet.PropServerKeepAlive:
		return uint32(p.ServerKeepAlive)
	case packet.PropRequestProblemInfo:
		return uint32(p.RequestProblemInfo)
	case packet.PropWillDelay:
		return p.WillDelay
	case packet.PropRequestResponseInfo:
		return uint32(p.RequestResponseInfo)
	case packet.PropReceiveMaximum:
		return uint32(p.ReceiveMaximum)
	case packet.PropTopicAliasMaximum:
		return uint32(p.TopicAliasMaximum)
	case packet.PropTopicAlias:
		return uint32(p.TopicAlias)
	case packet.PropMaximumQoS:
		return uint32(p.MaximumQoS)
	case packet.PropRetainAvailable:
		return uint32(p.RetainAvailable)
	case packet.PropMaximumPacketSize:
		return p.MaximumPacketSize
	case packet.PropWildcardSubAvailable:
		return uint32(p.WildcardSubAvailable)
	case packet.PropSubIDAvailable:
		return uint32(p.SubIDAvailable)
	case packet.PropSharedSubAvailable:
		return uint32(p.SharedSubAvailable)
	}
	return 0
}

func stringProp(p *packet.Properties, id packet.PropID) string {
	switch id {
	case packet.PropContentType:
		return p.ContentType
	case packet.PropResponseTopic:
		return p.ResponseTopic
	case packet.PropAssignedClientID:
		return p.AssignedClientID
	case packet.PropAuthMethod:
		return p.AuthMethod
	case packet.PropResponseInfo:
		return p.ResponseInfo
	case packet.PropServerReference:
		return p.ServerReference
	case packet.PropReasonString:
		return p.ReasonString
	}
	return ""
}

func binaryProp(p *packet.Properties, id packet.PropID) []byte {
	if id == packet.PropCorrelationData {
		return p.CorrelationData
	}
	return p.AuthData
}

// errShort and errBad are the decoding failures; the caller names the key.
var (
	errShort = errors.New("record ends early")
	errBad   = errors.New("invalid value")
)

// decoder reads a record; the first failure sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return x
}

// uint32 reads a uvarint that must fit 32 bits.
func (d *decoder) uint32() uint32 {
	x := d.uvarint()
	if x > 1<<32-1 {
		d.fail(fmt.Errorf("%w: %d does not fit 32 bits", errBad, x))
		return 0
	}
	return uint32(x)
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a number of items that each take at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// bytes returns the next length-prefixed bytes, aliasing the record.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	n := d.uvarint()
	if n == 0 {
		return time.Time{}
	}
	if n > 1e9 {
		d.fail(fmt.Errorf("%w: nanoseconds %d", errBad, n-1))
		return time.Time{}
	}
	return time.Unix(d.varint(), int64(n-1))
}

// end fails when bytes are left over.
func (d *decoder) end() {
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Errorf("%w: %d bytes left over", errBad, len(d.b)))
	}
}

func decodeSession(clientID string, b []byte) (*store.Session, error) {
	d := decoder{b: b}
	s := &store.Session{ClientID: clientID}
	s.Version = d.byte()
	s.Expiry = time.Duration(d.varint())
	s.Disconnected = d.time()
	if n := d.count(3); n > 0 {
		s.Subscriptions = make([]store.Subscription, n)
		for i := range s.Subscriptions {
			sub := &s.Subscriptions[i]
			sub.Filter = d.string()
			o := d.byte()
			sub.QoS = o & subQoSMask
			sub.NoLocal = o&subNoLocal != 0
			sub.RetainAsPublished = o&subRAP != 0
			sub.RetainHandling = o >> subRetainShift & 3
			sub.ID = d.uint32()
		}
	}
	if d.err == nil && len(d.b) > 0 {
		s.Owner = d.string()
	}
	d.end()
	return s, d.err
}

// entryHeader is what the refcount scan reads of an entry.
func entryMessageID(b []byte) (id uint64, ok bool, err error) {
	d := decoder{b: b}
	if d.byte()&entryHasMessage != 0 {
		id, ok = d.uvarint(), true
	}
	return id, ok, d.err
}

// decodeEntry decodes an entry; e.Message is left nil and the message ID
// returned.
func decodeEntry(seq uint64, b []byte) (e *store.Entry, msgID uint64, hasMsg bool, err error) {
	d := decoder{b: b}
	f := d.byte()
	if f&entryHasMessage != 0 {
		msgID, hasMsg = d.uvarint(), true
	}
	e = &store.Entry{
		Seq:    seq,
		QoS:    f >> entryQoSShift & 3,
		Retain: f&entryRetain != 0,
		State:  store.EntryState(f >> entryStateShift & 3),
	}
	id := d.uvarint()
	if id > 65535 {
		d.fail(fmt.Errorf("%w: packet identifier %d", errBad, id))
	}
	e.PacketID = uint16(id)
	if n := d.count(1); n > 0 {
		e.SubIDs = make([]uint32, n)
		for i := range e.SubIDs {
			e.SubIDs[i] = d.uint32()
		}
	}
	d.end()
	return e, msgID, hasMsg, d.err
}

// decodeMessage decodes a message. It copies b once: the payload and the
// binary properties alias the copy.
func decodeMessage(b []byte) (*store.Message, error) {
	d := decoder{b: append([]byte(nil), b...)}
	f := d.byte()
	if f&^(msgQoSMask|msgRetain) != 0 {
		d.fail(fmt.Errorf("%w: message flags %#x", errBad, f))
	}
	m := &store.Message{QoS: f & msgQoSMask, Retain: f&msgRetain != 0}
	m.ID = d.uvarint()
	m.Topic = d.string()
	m.Created = d.time()
	m.Expiry = d.time()
	d.props(&m.Properties)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		m.Payload = d.b
	}
	return m, nil
}

func (d *decoder) props(p *packet.Properties) {
	set := packet.PropSet(d.uvarint())
	if set&^knownProps != 0 {
		d.fail(fmt.Errorf("%w: unknown properties %#x", errBad, uint64(set&^knownProps)))
		return
	}
	for s := set; s != 0 && d.err == nil; s &= s - 1 {
		id := packet.PropID(bits.TrailingZeros64(uint64(s)))
		switch propKinds[id] {
		case propUint:
			p.SetUint(id, d.uint32())
		case propString:
			p.SetString(id, d.string())
		case propBinary:
			p.SetBinary(id, d.bytes())
		}
	}
	if n := d.count(1); n > 0 {
		p.SubscriptionIDs = make([]uint32, n)
		for i := range p.SubscriptionIDs {
			p.SubscriptionIDs[i] = d.uint32()
		}
	}
	if n := d.count(2); n > 0 {
		p.User = make([]packet.UserProperty, n)
		for i := range p.User {
			p.User[i] = packet.UserProperty{Key: d.string(), Value: d.string()}
		}
	}
}
