package packet

// Puback is a PUBACK packet.
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubrec is a PUBREC packet.
type Pubrec struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubrel is a PUBREL packet.
type Pubrel struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubcomp is a PUBCOMP packet.
type Pubcomp struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

func (*Puback) Type() Type  { return PUBACK }
func (*Pubrec) Type() Type  { return PUBREC }
func (*Pubrel) Type() Type  { return PUBREL }
func (*Pubcomp) Type() Type { return PUBCOMP }

func (a *Puback) Size(v byte) int  { return ackSize(a.ReasonCode, &a.Properties, v) }
func (a *Pubrec) Size(v byte) int  { return ackSize(a.ReasonCode, &a.Properties, v) }
func (a *Pubrel) Size(v byte) int  { return ackSize(a.ReasonCode, &a.Properties, v) }
func (a *Pubcomp) Size(v byte) int { return ackSize(a.ReasonCode, &a.Properties, v) }

func (a *Puback) Append(dst []byte, v byte) ([]byte, error) {
	return appendAck(dst, PUBACK, 0, a.PacketID, a.ReasonCode, &a.Properties, v)
}

func (a *Pubrec) Append(dst []byte, v byte) ([]byte, error) {
	return appendAck(dst, PUBREC, 0, a.PacketID, a.ReasonCode, &a.Properties, v)
}

func (a *Pubrel) Append(dst []byte, v byte) ([]byte, error) {
	return appendAck(dst, PUBREL, 2, a.PacketID, a.ReasonCode, &a.Properties, v)
}

func (a *Pubcomp) Append(dst []byte, v byte) ([]byte, error) {
	return appendAck(dst, PUBCOMP, 0, a.PacketID, a.ReasonCode, &a.Properties, v)
}

func (a *Puback) decode(r *reader, _, v byte) error {
	return decodeAck(r, v, tPuback, &pubackCodes, &a.PacketID, &a.ReasonCode, &a.Properties)
}

func (a *Pubrec) decode(r *reader, _, v byte) error {
	return decodeAck(r, v, tPubrec, &pubackCodes, &a.PacketID, &a.ReasonCode, &a.Properties)
}

func (a *Pubrel) decode(r *reader, _, v byte) error {
	return decodeAck(r, v, tPubrel, &pubrelCodes, &a.PacketID, &a.ReasonCode, &a.Properties)
}

func (a *Pubcomp) decode(r *reader, _, v byte) error {
	return decodeAck(r, v, tPubcomp, &pubrelCodes, &a.PacketID, &a.ReasonCode, &a.Properties)
}

// ackRemaining is the body length of a PUBACK-shaped packet. In 5.0 the
// reason code and properties are left out when they are Success and empty.
func ackRemaining(rc ReasonCode, p *Properties, version byte) int {
	if version < V5 || (rc == Success && p.Empty()) {
		return 2
	}
	if p.Empty() {
		return 3
	}
	return 3 + p.wireSize()
}

func ackSize(rc ReasonCode, p *Properties, version byte) int {
	return headerSize(ackRemaining(rc, p, version))
}

func appendAck(dst []byte, t Type, flags byte, id uint16, rc ReasonCode, p *Properties, version byte) ([]byte, error) {
	n := ackRemaining(rc, p, version)
	dst = append(dst, byte(t)<<4|flags)
	dst = appendVarint(dst, n)
	dst = appendUint16(dst, id)
	if n == 2 {
		return dst, nil
	}
	dst = append(dst, byte(rc))
	if n == 3 {
		return dst, nil
	}
	return p.appendProps(dst)
}

func decodeAck(r *reader, version byte, kind int, codes *reasonSet, id *uint16, rc *ReasonCode, p *Properties) error {
	var err error
	if *id, err = r.uint16(); err != nil {
		return err
	}
	if *id == 0 {
		return ErrPacketIDZero // [MQTT-2.3.1-1]
	}
	*rc = Success
	p.Reset()
	if version < V5 || r.left() == 0 {
		return emptyBody(r)
	}
	b, _ := r.byte()
	*rc = ReasonCode(b)
	if !codes.has(*rc) { // [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]
		return ErrReasonCode
	}
	if r.left() == 0 {
		return nil
	}
	if err := p.decode(r, kind); err != nil {
		return err
	}
	return emptyBody(r)
}
