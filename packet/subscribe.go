package packet

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            string
	QoS               byte // requested maximum QoS
	NoLocal           bool // 5.0
	RetainAsPublished bool // 5.0
	RetainHandling    byte // 5.0: 0, 1 or 2
}

// Subscribe is a SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription
}

func (*Subscribe) Type() Type { return SUBSCRIBE }

func (s *Subscribe) remaining(version byte) int {
	n := 2
	if version >= V5 {
		n += s.Properties.wireSize()
	}
	for i := range s.Subscriptions {
		n += 3 + len(s.Subscriptions[i].Filter)
	}
	return n
}

func (s *Subscribe) Size(version byte) int { return headerSize(s.remaining(version)) }

func (s *Subscribe) Append(dst []byte, version byte) ([]byte, error) {
	dst, err := appendHeader(dst, byte(SUBSCRIBE)<<4|2, s.remaining(version))
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, s.PacketID)
	if version >= V5 {
		if dst, err = s.Properties.appendProps(dst); err != nil {
			return dst, err
		}
	}
	for _, sub := range s.Subscriptions {
		if len(sub.Filter) > 65535 {
			return dst, ErrStringTooLong
		}
		if sub.QoS > 2 {
			return dst, ErrEncodeQoS
		}
		dst = appendString(dst, sub.Filter)
		opts := sub.QoS
		if version >= V5 {
			if sub.NoLocal {
				opts |= 0x04
			}
			if sub.RetainAsPublished {
				opts |= 0x08
			}
			opts |= sub.RetainHandling & 3 << 4
		}
		dst = append(dst, opts)
	}
	return dst, nil
}

func (s *Subscribe) decode(r *reader, _ byte, version byte) error {
	var err error
	if s.PacketID, err = r.uint16(); err != nil {
		return err
	}
	if s.PacketID == 0 {
		return ErrPacketIDZero // [MQTT-2.3.1-1]
	}
	if version >= V5 {
		if err := s.Properties.decode(r, tSubscribe); err != nil {
			return err
		}
	} else {
		s.Properties.Reset()
	}
	s.Subscriptions = s.Subscriptions[:0]
	for r.left() > 0 {
		var sub Subscription
		if sub.Filter, err = r.string(); err != nil { // [MQTT-3.8.3-1]
			return err
		}
		opts, err := r.byte()
		if err != nil {
			return err
		}
		if version >= V5 {
			if opts&0xc0 != 0 {
				return ErrSubOptions // [MQTT-3.8.3-5]
			}
			sub.NoLocal = opts&0x04 != 0
			sub.RetainAsPublished = opts&0x08 != 0
			sub.RetainHandling = opts >> 4 & 3
			if sub.RetainHandling == 3 {
				return ErrRetainHandling
			}
		} else if opts&0xfc != 0 {
			return ErrSubOptions // [MQTT-3.8.3-4]
		}
		sub.QoS = opts & 3
		if sub.QoS == 3 {
			if version >= V5 {
				return ErrMaxQoS3 // 5.0 3.8.3.1: a Protocol Error, not a Malformed Packet
			}
			return ErrQoS3 // [MQTT-3.8.3-4]
		}
		if err := validFilter(sub.Filter); err != nil {
			return err
		}
		if sub.NoLocal {
			if _, _, shared := ShareGroup(sub.Filter); shared {
				return ErrShareNoLocal // [MQTT-3.8.3-4]
			}
		}
		s.Subscriptions = append(growFor(s.Subscriptions, r.left(), 4), sub)
	}
	if len(s.Subscriptions) == 0 {
		return ErrNoFilters // [MQTT-3.8.3-3] [MQTT-3.8.3-2]
	}
	return nil
}

// Suback is a SUBACK packet. ReasonCodes hold the granted QoS (0x00 to 0x02)
// or a failure code per filter, in the order of the SUBSCRIBE [MQTT-3.9.3-1];
// at levels 3 and 4 every failure is sent as 0x80 [MQTT-3.9.3-2].
type Suback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

func (*Suback) Type() Type { return SUBACK }

func (s *Suback) remaining(version byte) int {
	n := 2 + len(s.ReasonCodes)
	if version >= V5 {
		n += s.Properties.wireSize()
	}
	return n
}

func (s *Suback) Size(version byte) int { return headerSize(s.remaining(version)) }

func (s *Suback) Append(dst []byte, version byte) ([]byte, error) {
	return appendCodes(dst, SUBACK, s.PacketID, &s.Properties, s.ReasonCodes, version, s.remaining(version))
}

func (s *Suback) decode(r *reader, _ byte, version byte) error {
	var err error
	s.ReasonCodes, err = decodeCodes(r, version, tSuback, &subackCodes, &s.PacketID, &s.Properties, s.ReasonCodes[:0])
	return err
}

// Unsubscribe is an UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties
	Filters    []string
}

func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }

func (u *Unsubscribe) remaining(version byte) int {
	n := 2
	if version >= V5 {
		n += u.Properties.wireSize()
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	return n
}

func (u *Unsubscribe) Size(version byte) int { return headerSize(u.remaining(version)) }

func (u *Unsubscribe) Append(dst []byte, version byte) ([]byte, error) {
	dst, err := appendHeader(dst, byte(UNSUBSCRIBE)<<4|2, u.remaining(version))
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, u.PacketID)
	if version >= V5 {
		if dst, err = u.Properties.appendProps(dst); err != nil {
			return dst, err
		}
	}
	for _, f := range u.Filters {
		if len(f) > 65535 {
			return dst, ErrStringTooLong
		}
		dst = appendString(dst, f)
	}
	return dst, nil
}

func (u *Unsubscribe) decode(r *reader, _ byte, version byte) error {
	var err error
	if u.PacketID, err = r.uint16(); err != nil {
		return err
	}
	if u.PacketID == 0 {
		return ErrPacketIDZero // [MQTT-2.3.1-1]
	}
	if version >= V5 {
		if err := u.Properties.decode(r, tUnsubscribe); err != nil {
			return err
		}
	} else {
		u.Properties.Reset()
	}
	u.Filters = u.Filters[:0]
	for r.left() > 0 {
		f, err := r.string() // [MQTT-3.10.3-1]
		if err != nil {
			return err
		}
		if err := validFilter(f); err != nil {
			return err
		}
		u.Filters = append(growFor(u.Filters, r.left(), 3), f)
	}
	if len(u.Filters) == 0 {
		return ErrNoFilters // [MQTT-3.10.3-2]
	}
	return nil
}

// Unsuback is an UNSUBACK packet. ReasonCodes (5.0 only) hold one code per
// filter, in the order of the UNSUBSCRIBE [MQTT-3.11.3-1].
type Unsuback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

func (*Unsuback) Type() Type { return UNSUBACK }

func (u *Unsuback) remaining(version byte) int {
	if version < V5 {
		return 2
	}
	return 2 + u.Properties.wireSize() + len(u.ReasonCodes)
}

func (u *Unsuback) Size(version byte) int { return headerSize(u.remaining(version)) }

func (u *Unsuback) Append(dst []byte, version byte) ([]byte, error) {
	return appendCodes(dst, UNSUBACK, u.PacketID, &u.Properties, u.ReasonCodes, version, u.remaining(version))
}

func (u *Unsuback) decode(r *reader, _ byte, version byte) error {
	if version < V5 {
		var err error
		if u.PacketID, err = r.uint16(); err != nil {
			return err
		}
		if u.PacketID == 0 {
			return ErrPacketIDZero
		}
		u.Properties.Reset()
		u.ReasonCodes = u.ReasonCodes[:0]
		return emptyBody(r)
	}
	var err error
	u.ReasonCodes, err = decodeCodes(r, version, tUnsuback, &unsubackCodes, &u.PacketID, &u.Properties, u.ReasonCodes[:0])
	return err
}

// appendCodes encodes SUBACK and UNSUBACK.
func appendCodes(dst []byte, t Type, id uint16, p *Properties, codes []ReasonCode, version byte, remaining int) ([]byte, error) {
	dst, err := appendHeader(dst, byte(t)<<4, remaining)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, id)
	if version >= V5 {
		if dst, err = p.appendProps(dst); err != nil {
			return dst, err
		}
	} else if t == UNSUBACK {
		return dst, nil
	}
	for _, c := range codes {
		if version < V5 && c.IsError() {
			c = UnspecifiedError // 0x80, the only 3.1.1 failure code [MQTT-3.9.3-2]
		}
		dst = append(dst, byte(c))
	}
	return dst, nil
}

func decodeCodes(r *reader, version byte, kind int, codes *reasonSet, id *uint16, p *Properties, dst []ReasonCode) ([]ReasonCode, error) {
	var err error
	if *id, err = r.uint16(); err != nil {
		return dst, err
	}
	if *id == 0 {
		return dst, ErrPacketIDZero
	}
	if version >= V5 {
		if err := p.decode(r, kind); err != nil {
			return dst, err
		}
	} else {
		p.Reset()
	}
	for r.left() > 0 {
		b, _ := r.byte()
		c := ReasonCode(b)
		if version < V5 {
			if c > GrantedQoS2 && c != UnspecifiedError {
				return dst, ErrSubackCode // [MQTT-3.9.3-2]
			}
		} else if !codes.has(c) { // [MQTT-3.9.3-2] [MQTT-3.11.3-2]
			return dst, ErrReasonCode
		}
		dst = append(growFor(dst, r.left(), 1), c)
	}
	if len(dst) == 0 {
		return dst, ErrShort
	}
	return dst, nil
}
