package packet

// Decoder turns bytes into packets, one at a time. It keeps no bytes of its
// own: the caller owns the buffer and drops what Decode reports as used.
type Decoder struct {
	// Version is the connection's protocol level. While it is 0 only
	// CONNECT (which names its level) and CONNACK (read as 3.1.1) can be
	// decoded; Decode sets it from a CONNECT.
	Version byte
	// MaxSize is the largest packet accepted, fixed header included; 0
	// means the protocol's limit. A larger packet is refused as soon as its
	// fixed header is read, before its body is waited for.
	MaxSize int
	// Reuse makes Decode return packets that alias the input buffer and
	// the decoder's own per-type structs: no allocation on the hot path,
	// but each packet is valid only until the next Decode call or until
	// the buffer changes. Without Reuse each packet is a fresh value that
	// owns a private copy of its bytes.
	Reuse bool
	// MaxUserProperties caps the User Properties of one packet (a will's
	// included), 0 meaning no cap: each empty one is 5 bytes on the wire
	// but 32 in memory. More fail with ErrTooManyUserProperties.
	MaxUserProperties int

	// r walks the body being decoded. It lives here rather than on Decode's
	// stack because it is passed through the Packet interface, which would
	// move it to the heap: one allocation per packet.
	r reader

	// Per-type packets recycled when Reuse is set, allocated on first
	// use so that an idle connection's decoder stays small.
	recycled *recycled
}

// Header reads the fixed header at the front of buf. It returns the packet's
// total length (fixed header included) and the header's own length; total is
// 0 when buf ends inside the header. A Remaining Length that makes the packet
// larger than max (0: no limit but the protocol's) is ErrPacketTooLarge.
func Header(buf []byte, max int) (total, header int, err error) {
	if len(buf) < 2 {
		return 0, 0, nil
	}
	rl, n, err := readVarint(buf[1:])
	if err != nil || n == 0 {
		return 0, 0, err
	}
	total = 1 + n + rl
	if max > 0 && total > max {
		return 0, 0, ErrPacketTooLarge
	}
	return total, 1 + n, nil
}

// Decode decodes the packet at the front of buf. It returns:
//   - p != nil: a complete packet, which used the first n bytes of buf;
//   - p == nil and err == nil: buf holds only part of a packet. n is then
//     the packet's total length once the fixed header is complete (so the
//     caller can size its buffer), or 0 while even the header is incomplete.
//     Nothing was consumed or copied;
//   - err != nil: the input is invalid (an *Error with the reason code to
//     answer with); n is the length of the offending packet when known.
func (d *Decoder) Decode(buf []byte) (p Packet, n int, err error) {
	total, header, err := Header(buf, d.MaxSize)
	if err != nil {
		return nil, 0, err
	}
	if total == 0 || len(buf) < total {
		return nil, total, nil
	}
	first := buf[0]
	t, flags := Type(first>>4), first&0x0f
	version := d.Version
	if version == 0 && t != CONNECT {
		if t != CONNACK {
			return nil, total, ErrNotConnected // [MQTT-3.1.0-1]
		}
		version = V311
	}
	if t == 0 || (t == AUTH && version < V5 && t != CONNECT) {
		return nil, total, ErrReservedType
	}
	if req := requiredFlags[t]; req != 0xff && flags != req &&
		!(version == V31 && req == 2 && flags == 0x0a) { // MQTT 3.1 may set DUP on these QoS 1 packets
		return nil, total, ErrFlags // [MQTT-2.2.2-2] [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1] [MQTT-3.14.1-1] [MQTT-3.15.1-1]
	}
	body := buf[header:total:total]
	if d.Reuse {
		p = d.reuse(t)
	} else {
		p = newPacket(t)
		body = append([]byte(nil), body...)
	}
	d.r = reader{buf: body, maxUser: d.MaxUserProperties}
	err = p.decode(&d.r, flags, version)
	d.r = reader{} // keep no reference to the caller's buffer
	if err != nil {
		return nil, total, err
	}
	if c, ok := p.(*Connect); ok && d.Version == 0 {
		d.Version = c.Version
	}
	return p, total, nil
}

type recycled struct {
	publish     Publish
	puback      Puback
	pubrec      Pubrec
	pubrel      Pubrel
	pubcomp     Pubcomp
	subscribe   Subscribe
	unsubscribe Unsubscribe
	pingreq     Pingreq
	pingresp    Pingresp
	disconnect  Disconnect
}

func (d *Decoder) reuse(t Type) Packet {
	switch t {
	case PINGREQ:
		return &pingreq
	case PINGRESP:
		return &pingresp
	case CONNECT, CONNACK, SUBACK, UNSUBACK, AUTH:
		return newPacket(t)
	}
	if d.recycled == nil {
		d.recycled = new(recycled)
	}
	rc := d.recycled
	switch t {
	case PUBLISH:
		return &rc.publish
	case PUBACK:
		return &rc.puback
	case PUBREC:
		return &rc.pubrec
	case PUBREL:
		return &rc.pubrel
	case PUBCOMP:
		return &rc.pubcomp
	case SUBSCRIBE:
		return &rc.subscribe
	case UNSUBSCRIBE:
		return &rc.unsubscribe
	case DISCONNECT:
		return &rc.disconnect
	}
	return newPacket(t)
}

// Pingreq and Pingresp have no fields: one value serves every decoder.
var (
	pingreq  Pingreq
	pingresp Pingresp
)
