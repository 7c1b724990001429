package packet

// Will is the will message carried by CONNECT.
type Will struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties Properties // 5.0 will properties
}

// Connect is a CONNECT packet.
type Connect struct {
	ProtocolName string // "MQTT", or "MQIsdp" for 3.1
	Version      byte   // protocol level: V31, V311 or V5
	CleanStart   bool   // Clean Session in 3.1 and 3.1.1
	KeepAlive    uint16
	ClientID     string
	WillFlag     bool
	Will         Will
	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
	Properties   Properties
	// Bridge is the high bit of the protocol level (Mosquitto's
	// try_private: 0x83, 0x84 from a bridge), kept out of Version.
	Bridge bool
}

func (*Connect) Type() Type { return CONNECT }

func (c *Connect) name() string {
	if c.ProtocolName != "" {
		return c.ProtocolName
	}
	if c.Version == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

func (c *Connect) remaining() int {
	n := 2 + len(c.name()) + 1 + 1 + 2 + 2 + len(c.ClientID)
	v5 := c.Version >= V5
	if v5 {
		n += c.Properties.wireSize()
	}
	if c.WillFlag {
		if v5 {
			n += c.Will.Properties.wireSize()
		}
		n += 4 + len(c.Will.Topic) + len(c.Will.Payload)
	}
	if c.UsernameFlag {
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		n += 2 + len(c.Password)
	}
	return n
}

// Size returns the encoded size; the version argument is ignored, c.Version rules.
func (c *Connect) Size(byte) int { return headerSize(c.remaining()) }

// Append encodes c at its own protocol level (c.Version); version is ignored.
func (c *Connect) Append(dst []byte, _ byte) ([]byte, error) {
	if c.Will.QoS > 2 {
		return dst, ErrEncodeQoS
	}
	if len(c.ClientID) > 65535 || len(c.Will.Topic) > 65535 || len(c.Will.Payload) > 65535 ||
		len(c.Username) > 65535 || len(c.Password) > 65535 {
		return dst, ErrStringTooLong
	}
	dst, err := appendHeader(dst, byte(CONNECT)<<4, c.remaining())
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, c.name())
	if c.Bridge {
		dst = append(dst, c.Version|0x80)
	} else {
		dst = append(dst, c.Version)
	}
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if c.WillFlag {
		flags |= 0x04 | c.Will.QoS<<3
		if c.Will.Retain {
			flags |= 0x20
		}
	}
	if c.PasswordFlag {
		flags |= 0x40
	}
	if c.UsernameFlag {
		flags |= 0x80
	}
	dst = append(dst, flags)
	dst = appendUint16(dst, c.KeepAlive)
	v5 := c.Version >= V5
	if v5 {
		if dst, err = c.Properties.appendProps(dst); err != nil {
			return dst, err
		}
	}
	dst = appendString(dst, c.ClientID)
	if c.WillFlag {
		if v5 {
			if dst, err = c.Will.Properties.appendProps(dst); err != nil {
				return dst, err
			}
		}
		dst = appendString(dst, c.Will.Topic)
		dst = appendBinary(dst, c.Will.Payload)
	}
	if c.UsernameFlag {
		dst = appendString(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

// decode reads a CONNECT. The version argument is ignored: CONNECT names its own.
func (c *Connect) decode(r *reader, _ byte, _ byte) error {
	name, err := r.string()
	if err != nil {
		return err
	}
	c.ProtocolName = name
	if c.Version, err = r.byte(); err != nil {
		return err
	}
	if c.Version == V31|0x80 || c.Version == V311|0x80 {
		// Mosquitto's try_private: a bridge, at 3.1 or 3.1.1.
		c.Version &^= 0x80
		c.Bridge = true
	}
	switch {
	case name == "MQTT" && (c.Version == V311 || c.Version == V5):
	case name == "MQIsdp" && c.Version == V31:
	case name != "MQTT" && name != "MQIsdp":
		return ErrProtocolName // [MQTT-3.1.2-1]
	default:
		return ErrProtocolVersion // [MQTT-3.1.2-2]
	}
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags&0x01 != 0 {
		return ErrConnectReserved // [MQTT-3.1.2-3]
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.Will.QoS = flags >> 3 & 0x03
	c.Will.Retain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if !c.WillFlag && (c.Will.QoS != 0 || c.Will.Retain) {
		return ErrWillFlags // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
	}
	if c.Will.QoS == 3 {
		return ErrQoS3 // [MQTT-3.1.2-14] [MQTT-3.1.2-12]
	}
	if c.PasswordFlag && !c.UsernameFlag && c.Version < V5 {
		return ErrPasswordNoUser // [MQTT-3.1.2-22]
	}
	if c.KeepAlive, err = r.uint16(); err != nil {
		return err
	}
	v5 := c.Version >= V5
	if v5 {
		if err := c.Properties.decode(r, tConnect); err != nil {
			return err
		}
	} else {
		c.Properties.Reset()
	}
	// Payload order: ClientID, will, user name, password [MQTT-3.1.3-1] [MQTT-3.1.3-3].
	if c.ClientID, err = r.string(); err != nil { // [MQTT-3.1.3-4]
		return err
	}
	c.Will.Properties.Reset()
	c.Will.Topic, c.Will.Payload = "", nil
	if c.WillFlag {
		if v5 {
			if err := c.Will.Properties.decode(r, kindWill); err != nil {
				return err
			}
		}
		if c.Will.Topic, err = r.string(); err != nil { // [MQTT-3.1.3-10] [MQTT-3.1.3-11]
			return err
		}
		if !validName(c.Will.Topic) {
			if c.Will.Topic == "" {
				return ErrTopicEmpty
			}
			return ErrTopicWildcard
		}
		if c.Will.Payload, err = r.binary(); err != nil {
			return err
		}
	}
	c.Username, c.Password = "", nil
	if c.UsernameFlag {
		if c.Username, err = r.string(); err != nil { // [MQTT-3.1.3-11] [MQTT-3.1.3-12]
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.binary(); err != nil {
			return err
		}
	}
	return emptyBody(r)
}

// Connack is a CONNACK packet. ReasonCode is a 5.0 code; at levels 3 and 4 it
// is sent as the nearest 3.1.1 return code (0x84 as 1, 0x85 as 2, 0x86 as 4,
// 0x87 as 5, any other failure as 3) and decoded back the same way.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Properties     Properties
}

func (*Connack) Type() Type { return CONNACK }

func (c *Connack) remaining(version byte) int {
	if version >= V5 {
		return 2 + c.Properties.wireSize()
	}
	return 2
}

func (c *Connack) Size(version byte) int { return headerSize(c.remaining(version)) }

func (c *Connack) Append(dst []byte, version byte) ([]byte, error) {
	dst, err := appendHeader(dst, byte(CONNACK)<<4, c.remaining(version))
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent && version >= V311 {
		flags = 1
	}
	if version >= V5 {
		dst = append(dst, flags, byte(c.ReasonCode))
		return c.Properties.appendProps(dst)
	}
	return append(dst, flags, connackV3Code(c.ReasonCode)), nil
}

func (c *Connack) decode(r *reader, _ byte, version byte) error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags&0xfe != 0 || (version == V31 && flags != 0) {
		return ErrConnackFlags // [MQTT-3.2.2-1]
	}
	c.SessionPresent = flags == 1
	code, err := r.byte()
	if err != nil {
		return err
	}
	if version >= V5 {
		c.ReasonCode = ReasonCode(code)
		if !connackCodes.has(c.ReasonCode) { // [MQTT-3.2.2-8]
			return ErrReasonCode
		}
		if err := c.Properties.decode(r, tConnack); err != nil {
			return err
		}
	} else {
		rc, ok := connackV5Code(code)
		if !ok {
			return ErrReasonCode
		}
		c.ReasonCode = rc
		c.Properties.Reset()
	}
	return emptyBody(r)
}
