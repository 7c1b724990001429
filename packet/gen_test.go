package packet

import (
	"math/rand/v2"
	"strings"
)

// gen makes random valid packets, reproducibly from a seed.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// genRunes are the characters of generated strings: ASCII, multi-byte
// forms of every length, the BOM (kept as it is [MQTT-1.5.3-3]), a
// noncharacter and control characters (allowed though discouraged).
var genRunes = []rune{'a', 'b', 'z', 'Q', '0', '9', '-', '_', '.', '$', ' ', '\u0001', '\u007f',
	'é', 'ß', '\u07ff', '€', '\u0800', '\ufeff', '\uffff', '\U00010000', '\U0002A6D4', '😀', '\U0010FFFF'}

func (g *gen) chance(percent int) bool { return g.r.IntN(100) < percent }

// word is a string of up to max characters without '/', '+', '#'.
func (g *gen) word(max int) string {
	var b strings.Builder
	for range g.r.IntN(max + 1) {
		b.WriteRune(genRunes[g.r.IntN(len(genRunes))])
	}
	return b.String()
}

// str is a UTF-8 Encoded String that may hold anything but U+0000.
func (g *gen) str(max int) string {
	s := g.word(max)
	if g.chance(20) {
		s += "/+#"[g.r.IntN(3):]
	}
	return s
}

func (g *gen) bytes(max int) []byte {
	if g.chance(20) {
		return nil
	}
	b := make([]byte, g.r.IntN(max+1))
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// topic is a valid Topic Name.
func (g *gen) topic() string {
	levels := make([]string, 1+g.r.IntN(4))
	for i := range levels {
		levels[i] = g.word(6)
	}
	if t := strings.Join(levels, "/"); t != "" {
		return t
	}
	return "t"
}

// filter is a valid Topic Filter, sometimes a shared one.
func (g *gen) filter() string {
	levels := make([]string, 1+g.r.IntN(4))
	for i := range levels {
		if g.chance(20) {
			levels[i] = "+"
		} else {
			levels[i] = g.word(5)
		}
	}
	if g.chance(20) {
		levels[len(levels)-1] = "#"
	}
	f := strings.Join(levels, "/")
	if f == "" {
		f = "f"
	}
	if g.chance(15) {
		name := g.word(4)
		if name == "" {
			name = "g"
		}
		f = "$share/" + name + "/" + f
	}
	return f
}

func (g *gen) packetID() uint16 { return uint16(1 + g.r.IntN(65535)) }

// props makes random valid properties for a packet kind (a Type, or kindWill).
func (g *gen) props(kind int) Properties {
	var p Properties
	for _, id := range singleProps {
		if propTable[id].allowed&(1<<kind) == 0 || !g.chance(30) {
			continue
		}
		switch propTable[id].kind {
		case kindByte:
			p.SetUint(id, uint32(g.r.IntN(2)))
		case kindUint16:
			v := uint32(g.r.IntN(65536))
			if v == 0 && (id == PropReceiveMaximum || id == PropTopicAlias) {
				v = 1
			}
			p.SetUint(id, v)
		case kindUint32:
			v := g.r.Uint32()
			if g.chance(50) {
				v = uint32(g.r.IntN(300))
			}
			if v == 0 && id == PropMaximumPacketSize {
				v = 1
			}
			p.SetUint(id, v)
		case kindString:
			if id == PropResponseTopic {
				p.SetString(id, g.topic())
			} else {
				p.SetString(id, g.str(8))
			}
		case kindBinary:
			p.SetBinary(id, g.bytes(8))
		}
	}
	if propTable[PropSubscriptionID].allowed&(1<<kind) != 0 && g.chance(40) {
		n := 1
		if kind == tPublish {
			n = 1 + g.r.IntN(3)
		}
		for range n {
			ids := []uint32{1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455}
			v := ids[g.r.IntN(len(ids))]
			if g.chance(50) {
				v = 1 + uint32(g.r.IntN(268435455))
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		}
	}
	if g.chance(30) {
		for range 1 + g.r.IntN(3) {
			p.User = append(p.User, UserProperty{g.str(5), g.str(5)})
		}
	}
	return p
}

// propsAt returns random properties at level 5, none before.
func (g *gen) propsAt(kind int, level byte) Properties {
	if level < V5 {
		return Properties{}
	}
	return g.props(kind)
}

func (g *gen) code(level byte, set *reasonSet) ReasonCode {
	if level < V5 {
		return Success
	}
	for {
		if c := ReasonCode(g.r.UintN(256)); set.has(c) {
			return c
		}
	}
}

// typesAt lists the packet types of a protocol level.
func typesAt(level byte) []Type {
	ts := []Type{CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
		UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT}
	if level >= V5 {
		ts = append(ts, AUTH)
	}
	return ts
}

// packet makes a random valid packet of a random type at level.
func (g *gen) packet(level byte) Packet {
	ts := typesAt(level)
	return g.packetOf(ts[g.r.IntN(len(ts))], level)
}

// packetOf makes a random valid packet of type t at level.
func (g *gen) packetOf(t Type, level byte) Packet {
	switch t {
	case CONNECT:
		c := &Connect{ProtocolName: "MQTT", Version: level, CleanStart: g.chance(50),
			KeepAlive: uint16(g.r.IntN(65536)), ClientID: g.str(23), Properties: g.propsAt(tConnect, level)}
		if level == V31 {
			c.ProtocolName = "MQIsdp"
		}
		if g.chance(50) {
			c.WillFlag = true
			c.Will = Will{Topic: g.topic(), Payload: g.bytes(16), QoS: byte(g.r.IntN(3)), Retain: g.chance(50),
				Properties: g.propsAt(kindWill, level)}
		}
		if g.chance(60) {
			c.UsernameFlag, c.Username = true, g.str(8)
		}
		if (c.UsernameFlag || level >= V5) && g.chance(60) {
			c.PasswordFlag, c.Password = true, g.bytes(8)
		}
		return c
	case CONNACK:
		c := &Connack{SessionPresent: level >= V311 && g.chance(50), Properties: g.propsAt(tConnack, level)}
		if level >= V5 {
			c.ReasonCode = g.code(level, &connackCodes)
		} else {
			v3 := []ReasonCode{Success, UnsupportedProtocolVersion, ClientIdentifierNotValid,
				ServerUnavailable, BadUserNameOrPassword, NotAuthorized}
			c.ReasonCode = v3[g.r.IntN(len(v3))]
		}
		return c
	case PUBLISH:
		p := &Publish{QoS: byte(g.r.IntN(3)), Retain: g.chance(30), Topic: g.topic(),
			Properties: g.propsAt(tPublish, level), Payload: g.bytes(32)}
		if p.QoS > 0 {
			p.Dup, p.PacketID = g.chance(30), g.packetID()
		}
		if level >= V5 && p.Properties.Has(PropTopicAlias) && g.chance(50) {
			p.Topic = ""
		}
		return p
	case PUBACK:
		return &Puback{PacketID: g.packetID(), ReasonCode: g.code(level, &pubackCodes), Properties: g.propsAt(tPuback, level)}
	case PUBREC:
		return &Pubrec{PacketID: g.packetID(), ReasonCode: g.code(level, &pubackCodes), Properties: g.propsAt(tPubrec, level)}
	case PUBREL:
		return &Pubrel{PacketID: g.packetID(), ReasonCode: g.code(level, &pubrelCodes), Properties: g.propsAt(tPubrel, level)}
	case PUBCOMP:
		return &Pubcomp{PacketID: g.packetID(), ReasonCode: g.code(level, &pubrelCodes), Properties: g.propsAt(tPubcomp, level)}
	case SUBSCRIBE:
		s := &Subscribe{PacketID: g.packetID(), Properties: g.propsAt(tSubscribe, level)}
		for range 1 + g.r.IntN(4) {
			sub := Subscription{Filter: g.filter(), QoS: byte(g.r.IntN(3))}
			if level >= V5 {
				_, _, shared := ShareGroup(sub.Filter)
				sub.NoLocal = !shared && g.chance(50)
				sub.RetainAsPublished = g.chance(50)
				sub.RetainHandling = byte(g.r.IntN(3))
			}
			s.Subscriptions = append(s.Subscriptions, sub)
		}
		return s
	case SUBACK:
		s := &Suback{PacketID: g.packetID(), Properties: g.propsAt(tSuback, level)}
		for range 1 + g.r.IntN(4) {
			if level >= V5 {
				s.ReasonCodes = append(s.ReasonCodes, g.code(level, &subackCodes))
			} else {
				s.ReasonCodes = append(s.ReasonCodes, []ReasonCode{0, 1, 2, 0x80}[g.r.IntN(4)])
			}
		}
		return s
	case UNSUBSCRIBE:
		u := &Unsubscribe{PacketID: g.packetID(), Properties: g.propsAt(tUnsubscribe, level)}
		for range 1 + g.r.IntN(4) {
			u.Filters = append(u.Filters, g.filter())
		}
		return u
	case UNSUBACK:
		u := &Unsuback{PacketID: g.packetID(), Properties: g.propsAt(tUnsuback, level)}
		if level >= V5 {
			for range 1 + g.r.IntN(4) {
				u.ReasonCodes = append(u.ReasonCodes, g.code(level, &unsubackCodes))
			}
		}
		return u
	case PINGREQ:
		return &Pingreq{}
	case PINGRESP:
		return &Pingresp{}
	case DISCONNECT:
		return &Disconnect{ReasonCode: g.code(level, &disconnectCodes), Properties: g.propsAt(tDisconnect, level)}
	case AUTH:
		return &Auth{ReasonCode: g.code(level, &authCodes), Properties: g.props(tAuth)}
	}
	panic("gen: type " + t.String())
}

// stream makes a CONNECT at level followed by count random packets, and
// their encoding one after the other.
func (g *gen) stream(level byte, count int) ([]Packet, []byte) {
	pkts := []Packet{g.packetOf(CONNECT, level)}
	for range count {
		pkts = append(pkts, g.packet(level))
	}
	var b []byte
	for _, p := range pkts {
		var err error
		if b, err = p.Append(b, level); err != nil {
			panic(err)
		}
	}
	return pkts, b
}
