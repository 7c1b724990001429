package packet

// Disconnect is a DISCONNECT packet. At levels 3 and 4 it has no body.
type Disconnect struct {
	ReasonCode ReasonCode
	Properties Properties
}

func (*Disconnect) Type() Type { return DISCONNECT }

func (d *Disconnect) remaining(version byte) int {
	if version < V5 || (d.ReasonCode == Success && d.Properties.Empty()) {
		return 0
	}
	if d.Properties.Empty() {
		return 1
	}
	return 1 + d.Properties.wireSize()
}

func (d *Disconnect) Size(version byte) int { return headerSize(d.remaining(version)) }

func (d *Disconnect) Append(dst []byte, version byte) ([]byte, error) {
	return appendReasoned(dst, DISCONNECT, d.ReasonCode, &d.Properties, d.remaining(version))
}

func (d *Disconnect) decode(r *reader, _ byte, version byte) error {
	return decodeReasoned(r, version, tDisconnect, &disconnectCodes, &d.ReasonCode, &d.Properties)
}

// Auth is an AUTH packet (5.0 only).
type Auth struct {
	ReasonCode ReasonCode
	Properties Properties
}

func (*Auth) Type() Type { return AUTH }

func (a *Auth) remaining() int {
	if a.ReasonCode == Success && a.Properties.Empty() {
		return 0
	}
	return 1 + a.Properties.wireSize()
}

func (a *Auth) Size(byte) int { return headerSize(a.remaining()) }

func (a *Auth) Append(dst []byte, version byte) ([]byte, error) {
	if version < V5 {
		return dst, ErrEncodeType
	}
	return appendReasoned(dst, AUTH, a.ReasonCode, &a.Properties, a.remaining())
}

func (a *Auth) decode(r *reader, _ byte, version byte) error {
	return decodeReasoned(r, version, tAuth, &authCodes, &a.ReasonCode, &a.Properties)
}

func appendReasoned(dst []byte, t Type, rc ReasonCode, p *Properties, remaining int) ([]byte, error) {
	dst = append(dst, byte(t)<<4)
	dst = appendVarint(dst, remaining)
	if remaining == 0 {
		return dst, nil
	}
	dst = append(dst, byte(rc))
	if remaining == 1 {
		return dst, nil
	}
	return p.appendProps(dst)
}

// decodeReasoned reads DISCONNECT and AUTH bodies: an optional reason code
// and optional properties.
func decodeReasoned(r *reader, version byte, kind int, codes *reasonSet, rc *ReasonCode, p *Properties) error {
	*rc = Success
	p.Reset()
	if version < V5 || r.left() == 0 {
		return emptyBody(r)
	}
	b, _ := r.byte()
	*rc = ReasonCode(b)
	if !codes.has(*rc) { // [MQTT-3.14.2-1] [MQTT-3.15.2-1]
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
