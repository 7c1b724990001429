package packet

import "strconv"

// Type is a control packet type (the high nibble of the first byte).
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type " + strconv.Itoa(int(t))
}

// Protocol levels.
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1
	V5   byte = 5 // MQTT 5.0
)

// Packet is one MQTT control packet.
type Packet interface {
	// Type returns the control packet type.
	Type() Type
	// Size returns the length of the encoded packet, fixed header included,
	// at protocol level version.
	Size(version byte) int
	// Append appends the encoded packet to dst.
	Append(dst []byte, version byte) ([]byte, error)
	// decode fills the packet from its body; flags are the low four bits
	// of the fixed header.
	decode(r *reader, flags byte, version byte) error
}

// requiredFlags gives the fixed-header flags each type must carry
// [MQTT-2.2.2-1]; PUBLISH (0xff here) has its own.
var requiredFlags = [16]byte{
	PUBLISH: 0xff, PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2,
}

func newPacket(t Type) Packet {
	switch t {
	case CONNECT:
		return new(Connect)
	case CONNACK:
		return new(Connack)
	case PUBLISH:
		return new(Publish)
	case PUBACK:
		return new(Puback)
	case PUBREC:
		return new(Pubrec)
	case PUBREL:
		return new(Pubrel)
	case PUBCOMP:
		return new(Pubcomp)
	case SUBSCRIBE:
		return new(Subscribe)
	case SUBACK:
		return new(Suback)
	case UNSUBSCRIBE:
		return new(Unsubscribe)
	case UNSUBACK:
		return new(Unsuback)
	case PINGREQ:
		return new(Pingreq)
	case PINGRESP:
		return new(Pingresp)
	case DISCONNECT:
		return new(Disconnect)
	case AUTH:
		return new(Auth)
	}
	return nil
}

// Encode appends p to dst: a convenience for Append.
func Encode(dst []byte, p Packet, version byte) ([]byte, error) { return p.Append(dst, version) }

// Pingreq is a PINGREQ packet.
type Pingreq struct{}

// Pingresp is a PINGRESP packet.
type Pingresp struct{}

func (*Pingreq) Type() Type                         { return PINGREQ }
func (*Pingreq) Size(byte) int                      { return 2 }
func (*Pingresp) Type() Type                        { return PINGRESP }
func (*Pingresp) Size(byte) int                     { return 2 }
func (*Pingreq) decode(r *reader, _, _ byte) error  { return emptyBody(r) }
func (*Pingresp) decode(r *reader, _, _ byte) error { return emptyBody(r) }

func (*Pingreq) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGREQ)<<4, 0), nil
}

func (*Pingresp) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGRESP)<<4, 0), nil
}

func emptyBody(r *reader) error {
	if r.left() != 0 {
		return ErrTrailing
	}
	return nil
}
