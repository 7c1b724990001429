package packet

import "math/bits"

// PropID identifies an MQTT 5.0 property (section 2.2.2.2).
type PropID byte

// Property identifiers.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUser                 PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// PropSet is a set of property identifiers: which single-valued properties
// of a Properties value are present.
type PropSet uint64

// Has reports whether id is in the set.
func (s PropSet) Has(id PropID) bool { return s&(1<<id) != 0 }

// Add puts id in the set.
func (s *PropSet) Add(id PropID) { *s |= 1 << id }

// Remove takes id out of the set.
func (s *PropSet) Remove(id PropID) { *s &^= 1 << id }

// UserProperty is one User Property name/value pair.
type UserProperty struct {
	Key, Value string
}

// Properties holds the 5.0 properties of a packet. A single-valued property
// is sent only when its identifier is in Present (the Set methods add it);
// the repeatable ones (User, SubscriptionIDs) are sent when non-empty, User
// properties in their order.
type Properties struct {
	Present PropSet

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          string
	ResponseTopic        string
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     string
	ServerKeepAlive      uint16
	AuthMethod           string
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether a single-valued property is present.
func (p *Properties) Has(id PropID) bool { return p.Present.Has(id) }

// SetUint sets a numeric property (byte, two- or four-byte integer) and marks
// it present. It panics for an identifier that is not numeric.
func (p *Properties) SetUint(id PropID, v uint32) {
	switch id {
	case PropPayloadFormat:
		p.PayloadFormat = byte(v)
	case PropMessageExpiry:
		p.MessageExpiry = v
	case PropSessionExpiry:
		p.SessionExpiry = v
	case PropServerKeepAlive:
		p.ServerKeepAlive = uint16(v)
	case PropRequestProblemInfo:
		p.RequestProblemInfo = byte(v)
	case PropWillDelay:
		p.WillDelay = v
	case PropRequestResponseInfo:
		p.RequestResponseInfo = byte(v)
	case PropReceiveMaximum:
		p.ReceiveMaximum = uint16(v)
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = uint16(v)
	case PropTopicAlias:
		p.TopicAlias = uint16(v)
	case PropMaximumQoS:
		p.MaximumQoS = byte(v)
	case PropRetainAvailable:
		p.RetainAvailable = byte(v)
	case PropMaximumPacketSize:
		p.MaximumPacketSize = v
	case PropWildcardSubAvailable:
		p.WildcardSubAvailable = byte(v)
	case PropSubIDAvailable:
		p.SubIDAvailable = byte(v)
	case PropSharedSubAvailable:
		p.SharedSubAvailable = byte(v)
	default:
		panic("packet: SetUint on a property that is not numeric")
	}
	p.Present.Add(id)
}

// SetString sets a string property and marks it present. It panics for an
// identifier that is not a string.
func (p *Properties) SetString(id PropID, s string) {
	switch id {
	case PropContentType:
		p.ContentType = s
	case PropResponseTopic:
		p.ResponseTopic = s
	case PropAssignedClientID:
		p.AssignedClientID = s
	case PropAuthMethod:
		p.AuthMethod = s
	case PropResponseInfo:
		p.ResponseInfo = s
	case PropServerReference:
		p.ServerReference = s
	case PropReasonString:
		p.ReasonString = s
	default:
		panic("packet: SetString on a property that is not a string")
	}
	p.Present.Add(id)
}

// SetBinary sets Correlation Data or Authentication Data and marks it present.
func (p *Properties) SetBinary(id PropID, b []byte) {
	switch id {
	case PropCorrelationData:
		p.CorrelationData = b
	case PropAuthData:
		p.AuthData = b
	default:
		panic("packet: SetBinary on a property that is not binary")
	}
	p.Present.Add(id)
}

// Reset empties p, keeping the capacity of its slices.
func (p *Properties) Reset() {
	user, ids := p.User[:0], p.SubscriptionIDs[:0]
	*p = Properties{User: user, SubscriptionIDs: ids}
}

// Empty reports whether no property is set.
func (p *Properties) Empty() bool {
	return p.Present == 0 && len(p.User) == 0 && len(p.SubscriptionIDs) == 0
}

// Packet kinds for the property table: a bit per packet type, with bit 0 for
// the will properties of CONNECT.
const kindWill = 0

type propKind uint8

const (
	kindByte propKind = iota
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

type propInfo struct {
	kind    propKind
	allowed uint16 // bit per packet Type, bit 0 for will properties
}

func in(types ...int) uint16 {
	var m uint16
	for _, t := range types {
		m |= 1 << t
	}
	return m
}

const (
	tConnect     = int(CONNECT)
	tConnack     = int(CONNACK)
	tPublish     = int(PUBLISH)
	tPuback      = int(PUBACK)
	tPubrec      = int(PUBREC)
	tPubrel      = int(PUBREL)
	tPubcomp     = int(PUBCOMP)
	tSubscribe   = int(SUBSCRIBE)
	tSuback      = int(SUBACK)
	tUnsubscribe = int(UNSUBSCRIBE)
	tUnsuback    = int(UNSUBACK)
	tDisconnect  = int(DISCONNECT)
	tAuth        = int(AUTH)
)

// propTable lists each property's wire type and the packets it may appear in
// (5.0 section 2.2.2.2).
var propTable = [64]propInfo{
	PropPayloadFormat:        {kindByte, in(tPublish, kindWill)},
	PropMessageExpiry:        {kindUint32, in(tPublish, kindWill)},
	PropContentType:          {kindString, in(tPublish, kindWill)},
	PropResponseTopic:        {kindString, in(tPublish, kindWill)},
	PropCorrelationData:      {kindBinary, in(tPublish, kindWill)},
	PropSubscriptionID:       {kindVarint, in(tPublish, tSubscribe)},
	PropSessionExpiry:        {kindUint32, in(tConnect, tConnack, tDisconnect)},
	PropAssignedClientID:     {kindString, in(tConnack)},
	PropServerKeepAlive:      {kindUint16, in(tConnack)},
	PropAuthMethod:           {kindString, in(tConnect, tConnack, tAuth)},
	PropAuthData:             {kindBinary, in(tConnect, tConnack, tAuth)},
	PropRequestProblemInfo:   {kindByte, in(tConnect)},
	PropWillDelay:            {kindUint32, in(kindWill)},
	PropRequestResponseInfo:  {kindByte, in(tConnect)},
	PropResponseInfo:         {kindString, in(tConnack)},
	PropServerReference:      {kindString, in(tConnack, tDisconnect)},
	PropReasonString:         {kindString, in(tConnack, tPuback, tPubrec, tPubrel, tPubcomp, tSuback, tUnsuback, tDisconnect, tAuth)},
	PropReceiveMaximum:       {kindUint16, in(tConnect, tConnack)},
	PropTopicAliasMaximum:    {kindUint16, in(tConnect, tConnack)},
	PropTopicAlias:           {kindUint16, in(tPublish)},
	PropMaximumQoS:           {kindByte, in(tConnack)},
	PropRetainAvailable:      {kindByte, in(tConnack)},
	PropUser:                 {kindPair, in(tConnect, tConnack, tPublish, tPuback, tPubrec, tPubrel, tPubcomp, tSubscribe, tSuback, tUnsubscribe, tUnsuback, tDisconnect, tAuth, kindWill)},
	PropMaximumPacketSize:    {kindUint32, in(tConnect, tConnack)},
	PropWildcardSubAvailable: {kindByte, in(tConnack)},
	PropSubIDAvailable:       {kindByte, in(tConnack)},
	PropSharedSubAvailable:   {kindByte, in(tConnack)},
}

// singleMask is the set of single-valued properties: bits of Present for
// anything else (a stray Add of PropUser, say) are never encoded.
var singleMask = func() (m PropSet) {
	for _, id := range singleProps {
		m.Add(id)
	}
	return m
}()

// singleProps lists the single-valued properties in the order they are encoded.
var singleProps = []PropID{
	PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
	PropCorrelationData, PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive,
	PropAuthMethod, PropAuthData, PropRequestProblemInfo, PropWillDelay,
	PropRequestResponseInfo, PropResponseInfo, PropServerReference, PropReasonString,
	PropReceiveMaximum, PropTopicAliasMaximum, PropTopicAlias, PropMaximumQoS,
	PropRetainAvailable, PropMaximumPacketSize, PropWildcardSubAvailable,
	PropSubIDAvailable, PropSharedSubAvailable,
}

func (p *Properties) uintValue(id PropID) uint32 {
	switch id {
	case PropPayloadFormat:
		return uint32(p.PayloadFormat)
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropServerKeepAlive:
		return uint32(p.ServerKeepAlive)
	case PropRequestProblemInfo:
		return uint32(p.RequestProblemInfo)
	case PropWillDelay:
		return p.WillDelay
	case PropRequestResponseInfo:
		return uint32(p.RequestResponseInfo)
	case PropReceiveMaximum:
		return uint32(p.ReceiveMaximum)
	case PropTopicAliasMaximum:
		return uint32(p.TopicAliasMaximum)
	case PropTopicAlias:
		return uint32(p.TopicAlias)
	case PropMaximumQoS:
		return uint32(p.MaximumQoS)
	case PropRetainAvailable:
		return uint32(p.RetainAvailable)
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	case PropWildcardSubAvailable:
		return uint32(p.WildcardSubAvailable)
	case PropSubIDAvailable:
		return uint32(p.SubIDAvailable)
	case PropSharedSubAvailable:
		return uint32(p.SharedSubAvailable)
	}
	return 0
}

func (p *Properties) stringValue(id PropID) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

func (p *Properties) binaryValue(id PropID) []byte {
	if id == PropCorrelationData {
		return p.CorrelationData
	}
	return p.AuthData
}

// size returns the length of the encoded properties, without the length prefix.
func (p *Properties) size() int {
	n := 0
	for set := p.Present & singleMask; set != 0; set &= set - 1 {
		id := PropID(bits.TrailingZeros64(uint64(set)))
		switch propTable[id].kind {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindString:
			n += 3 + len(p.stringValue(id))
		case kindBinary:
			n += 3 + len(p.binaryValue(id))
		}
	}
	for _, id := range p.SubscriptionIDs {
		n += 1 + varintLen(int(id))
	}
	for _, u := range p.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	return n
}

// wireSize is the size with the Property Length prefix [MQTT-2.2.2-1].
func (p *Properties) wireSize() int {
	n := p.size()
	return varintLen(n) + n
}

// appendProps appends the Property Length and the properties.
func (p *Properties) appendProps(dst []byte) ([]byte, error) {
	dst = appendVarint(dst, p.size())
	// Set bits in ascending order: the identifiers' numeric order.
	for set := p.Present & singleMask; set != 0; set &= set - 1 {
		id := PropID(bits.TrailingZeros64(uint64(set)))
		dst = append(dst, byte(id))
		switch propTable[id].kind {
		case kindByte:
			dst = append(dst, byte(p.uintValue(id)))
		case kindUint16:
			dst = appendUint16(dst, uint16(p.uintValue(id)))
		case kindUint32:
			dst = appendUint32(dst, p.uintValue(id))
		case kindString:
			s := p.stringValue(id)
			if len(s) > 65535 {
				return dst, ErrStringTooLong
			}
			dst = appendString(dst, s)
		case kindBinary:
			b := p.binaryValue(id)
			if len(b) > 65535 {
				return dst, ErrStringTooLong
			}
			dst = appendBinary(dst, b)
		}
	}
	for _, id := range p.SubscriptionIDs {
		dst = append(dst, byte(PropSubscriptionID))
		dst = appendVarint(dst, int(id))
	}
	for _, u := range p.User {
		if len(u.Key) > 65535 || len(u.Value) > 65535 {
			return dst, ErrStringTooLong
		}
		dst = append(dst, byte(PropUser))
		dst = appendString(dst, u.Key)
		dst = appendString(dst, u.Value)
	}
	return dst, nil
}

// decodeProps reads a Property Length and the properties that follow into p,
// checking each is allowed in the packet kind (a Type, or kindWill).
func (p *Properties) decode(r *reader, kind int) error {
	p.Reset()
	l, err := r.varint()
	if err != nil {
		return err
	}
	if l > r.left() {
		return ErrShort
	}
	end := r.off + l
	sub := reader{buf: r.buf[:end], off: r.off, maxUser: r.maxUser}
	for sub.off < end {
		v, err := sub.varint()
		if err != nil {
			return err
		}
		if v >= len(propTable) || propTable[v].allowed == 0 {
			return ErrPropertyUnknown
		}
		id := PropID(v)
		info := propTable[id]
		if info.allowed&(1<<kind) == 0 {
			return ErrPropertyNotAllowed
		}
		switch info.kind {
		case kindPair:
			k, err := sub.string()
			if err != nil {
				return err
			}
			val, err := sub.string() // [MQTT-1.5.7-1]
			if err != nil {
				return err
			}
			if sub.maxUser > 0 && len(p.User) >= sub.maxUser {
				return ErrTooManyUserProperties
			}
			left := end - sub.off
			if sub.maxUser > 0 {
				left = min(left, 5*sub.maxUser)
			}
			p.User = append(growFor(p.User, left, 5), UserProperty{k, val})
			continue
		case kindVarint: // Subscription Identifier
			x, err := sub.varint()
			if err != nil {
				return err
			}
			if x == 0 {
				return ErrPropertyValue
			}
			if kind == tSubscribe && len(p.SubscriptionIDs) > 0 {
				return ErrPropertyRepeated
			}
			p.SubscriptionIDs = append(growFor(p.SubscriptionIDs, end-sub.off, 2), uint32(x))
			continue
		}
		if p.Present.Has(id) {
			return ErrPropertyRepeated
		}
		p.Present.Add(id)
		switch info.kind {
		case kindByte:
			b, err := sub.byte()
			if err != nil {
				return err
			}
			if b > 1 { // every byte property is 0 or 1
				return ErrPropertyValue
			}
			p.SetUint(id, uint32(b))
		case kindUint16:
			x, err := sub.uint16()
			if err != nil {
				return err
			}
			if x == 0 {
				switch id {
				case PropReceiveMaximum:
					return ErrPropertyValue
				case PropTopicAlias:
					return ErrTopicAliasZero
				}
			}
			p.SetUint(id, uint32(x))
		case kindUint32:
			x, err := sub.uint32()
			if err != nil {
				return err
			}
			if x == 0 && id == PropMaximumPacketSize {
				return ErrPropertyValue
			}
			p.SetUint(id, x)
		case kindString:
			s, err := sub.string()
			if err != nil {
				return err
			}
			if id == PropResponseTopic && !validName(s) { // [MQTT-3.3.2-14]
				return ErrResponseTopic
			}
			p.SetString(id, s)
		case kindBinary:
			b, err := sub.binary()
			if err != nil {
				return err
			}
			p.SetBinary(id, b)
		}
	}
	r.off = end
	return nil
}
