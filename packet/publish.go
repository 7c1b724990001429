package packet

// Publish is a PUBLISH packet.
type Publish struct {
	Dup        bool
	QoS        byte
	Retain     bool
	Topic      string // empty in 5.0 when a Topic Alias stands for it
	PacketID   uint16 // only at QoS 1 and 2 [MQTT-2.3.1-5] [MQTT-2.2.1-2]
	Properties Properties
	Payload    []byte
}

func (*Publish) Type() Type { return PUBLISH }

func (p *Publish) remaining(version byte) int {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if version >= V5 {
		n += p.Properties.wireSize()
	}
	return n
}

func (p *Publish) Size(version byte) int { return headerSize(p.remaining(version)) }

func (p *Publish) Append(dst []byte, version byte) ([]byte, error) {
	if p.QoS > 2 {
		return dst, ErrEncodeQoS
	}
	if len(p.Topic) > 65535 {
		return dst, ErrStringTooLong
	}
	first := byte(PUBLISH)<<4 | p.QoS<<1
	if p.Dup && p.QoS > 0 {
		first |= 0x08
	}
	if p.Retain {
		first |= 0x01
	}
	dst, err := appendHeader(dst, first, p.remaining(version))
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if version >= V5 {
		if dst, err = p.Properties.appendProps(dst); err != nil {
			return dst, err
		}
	}
	return append(dst, p.Payload...), nil
}

func (p *Publish) decode(r *reader, flags byte, version byte) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return ErrQoS3 // [MQTT-3.3.1-4]
	}
	if p.Dup && p.QoS == 0 {
		return ErrDupQoS0 // [MQTT-3.3.1-2]
	}
	var err error
	if p.Topic, err = r.string(); err != nil { // [MQTT-3.3.2-1]
		return err
	}
	for i := 0; i < len(p.Topic); i++ {
		if c := p.Topic[i]; c == '+' || c == '#' {
			return ErrTopicWildcard // [MQTT-3.3.2-2]
		}
	}
	p.PacketID = 0
	if p.QoS > 0 {
		if p.PacketID, err = r.uint16(); err != nil {
			return err
		}
		if p.PacketID == 0 {
			return ErrPacketIDZero // [MQTT-2.3.1-1]
		}
	}
	if version >= V5 {
		if err := p.Properties.decode(r, tPublish); err != nil {
			return err
		}
		if p.Topic == "" && !p.Properties.Has(PropTopicAlias) {
			return ErrTopicNoAlias
		}
	} else {
		p.Properties.Reset()
		if p.Topic == "" {
			return ErrTopicEmpty // [MQTT-4.7.3-1]
		}
	}
	p.Payload = r.buf[r.off:len(r.buf):len(r.buf)]
	r.off = len(r.buf)
	return nil
}

// Clone returns a deep copy of p that shares no memory with the buffer p
// was decoded from.
func (p *Publish) Clone() *Publish {
	c := *p
	c.Properties = p.Properties.Clone()
	n := len(p.Topic) + len(p.Payload)
	buf := make([]byte, 0, n)
	buf = append(buf, p.Topic...)
	buf = append(buf, p.Payload...)
	c.Topic = aliasString(buf[:len(p.Topic)])
	c.Payload = buf[len(p.Topic):n:n]
	if p.Payload == nil {
		c.Payload = nil
	}
	return &c
}

// Clone returns a deep copy of p.
func (p *Properties) Clone() Properties {
	c := *p
	c.ContentType = clone(p.ContentType)
	c.ResponseTopic = clone(p.ResponseTopic)
	c.AssignedClientID = clone(p.AssignedClientID)
	c.AuthMethod = clone(p.AuthMethod)
	c.ResponseInfo = clone(p.ResponseInfo)
	c.ServerReference = clone(p.ServerReference)
	c.ReasonString = clone(p.ReasonString)
	c.CorrelationData = cloneBytes(p.CorrelationData)
	c.AuthData = cloneBytes(p.AuthData)
	c.User = nil
	if len(p.User) > 0 {
		c.User = make([]UserProperty, len(p.User))
		for i, u := range p.User {
			c.User[i] = UserProperty{clone(u.Key), clone(u.Value)}
		}
	}
	c.SubscriptionIDs = nil
	if len(p.SubscriptionIDs) > 0 {
		c.SubscriptionIDs = append([]uint32(nil), p.SubscriptionIDs...)
	}
	return c
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string(append([]byte(nil), s...))
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
