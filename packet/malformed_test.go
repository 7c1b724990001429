package packet

import (
	"errors"
	"testing"
)

// badCase is an input the decoder must refuse: raw decoded by a Decoder of
// Version level (and MaxSize max) gives err, an *Error with reason code code.
// The name cites the statement, or the section, the row checks.
type badCase struct {
	name  string
	level byte
	max   int
	raw   []byte
	err   error
	code  ReasonCode
}

// connect311 builds a 3.1.1 CONNECT with the given Connect Flags and payload.
func connect311(flags byte, payload ...[]byte) []byte {
	return pkt(0x10, str("MQTT"), []byte{V311, flags, 0, 60}, cat(payload...))
}

// connect5 builds a 5.0 CONNECT with the given Connect Flags, properties and payload.
func connect5(flags byte, ps []byte, payload ...[]byte) []byte {
	return pkt(0x10, str("MQTT"), []byte{V5, flags, 0, 60}, ps, cat(payload...))
}

// publish5 builds a 5.0 QoS 0 PUBLISH to topic "t" with the given properties.
func publish5(ps ...[]byte) []byte { return pkt(0x30, str("t"), props(ps...), []byte("x")) }

// subscribe5 builds a 5.0 SUBSCRIBE (packet id 1) of one filter with options.
func subscribe5(filter string, opts byte) []byte {
	return pkt(0x82, hx("00 01 00"), str(filter), []byte{opts})
}

// subscribe311 builds a 3.1.1 SUBSCRIBE (packet id 1) of one filter with options.
func subscribe311(filter string, opts byte) []byte {
	return pkt(0x82, hx("00 01"), str(filter), []byte{opts})
}

var badCases = []badCase{
	// Fixed header.
	{"reserved type 0 [MQTT-2.2.2-2]", V311, 0, hx("00 00"), ErrReservedType, MalformedPacket},
	{"reserved type 0 at 3.1", V31, 0, hx("00 00"), ErrReservedType, MalformedPacket},
	{"reserved type 0 at 5.0", V5, 0, hx("00 00"), ErrReservedType, MalformedPacket},
	{"AUTH at level 4: type 15 reserved in 3.1.1", V311, 0, hx("f0 00"), ErrReservedType, MalformedPacket},
	{"AUTH at level 3: type 15 reserved in 3.1", V31, 0, hx("f0 00"), ErrReservedType, MalformedPacket},
	{"PUBREL flags 0000 [MQTT-3.6.1-1] [MQTT-2.2.2-2]", V311, 0, hx("60 02 00 01"), ErrFlags, MalformedPacket},
	{"PUBREL flags 0011 at 3.1", V31, 0, hx("63 02 00 01"), ErrFlags, MalformedPacket},
	{"PUBREL flags 1010 at 5.0 [MQTT-3.6.1-1] [MQTT-2.1.3-1]", V5, 0, hx("6a 02 00 01"), ErrFlags, MalformedPacket},
	{"SUBSCRIBE flags 0000 [MQTT-3.8.1-1]", V311, 0, pkt(0x80, hx("00 01"), str("a"), hx("00")), ErrFlags, MalformedPacket},
	{"SUBSCRIBE flags 0011 at 5.0 [MQTT-3.8.1-1]", V5, 0, pkt(0x83, hx("00 01 00"), str("a"), hx("00")), ErrFlags, MalformedPacket},
	{"UNSUBSCRIBE flags 0000 [MQTT-3.10.1-1]", V311, 0, pkt(0xa0, hx("00 01"), str("a")), ErrFlags, MalformedPacket},
	{"UNSUBSCRIBE flags 1010 at 5.0 [MQTT-3.10.1-1]", V5, 0, pkt(0xaa, hx("00 01 00"), str("a")), ErrFlags, MalformedPacket},
	{"DISCONNECT flags 0001 [MQTT-3.14.1-1]", V311, 0, hx("e1 00"), ErrFlags, MalformedPacket},
	{"DISCONNECT flags 1000 at 5.0 [MQTT-3.14.1-1]", V5, 0, hx("e8 00"), ErrFlags, MalformedPacket},
	{"AUTH flags 0001 [MQTT-3.15.1-1]", V5, 0, hx("f1 00"), ErrFlags, MalformedPacket},
	{"PINGREQ flags 0001 [MQTT-2.2.2-2]", V311, 0, hx("c1 00"), ErrFlags, MalformedPacket},
	{"PINGREQ flags 0010 at 5.0 [MQTT-2.1.3-1]", V5, 0, hx("c2 00"), ErrFlags, MalformedPacket},
	{"PINGRESP flags 0100 [MQTT-2.2.2-2]", V311, 0, hx("d4 00"), ErrFlags, MalformedPacket},
	{"CONNECT flags 0010 [MQTT-2.2.2-2]", 0, 0, pkt(0x12, str("MQTT"), hx("04 02 00 3c"), str("c")), ErrFlags, MalformedPacket},
	{"CONNACK flags 0001 [MQTT-2.2.2-2]", V311, 0, hx("21 02 00 00"), ErrFlags, MalformedPacket},
	{"PUBACK flags 0010 [MQTT-2.2.2-2]", V311, 0, hx("42 02 00 01"), ErrFlags, MalformedPacket},
	{"PUBREC flags 0001 [MQTT-2.1.3-1]", V5, 0, hx("51 02 00 01"), ErrFlags, MalformedPacket},
	{"PUBCOMP flags 1000 [MQTT-2.2.2-2]", V311, 0, hx("78 02 00 01"), ErrFlags, MalformedPacket},
	{"SUBACK flags 0010 [MQTT-2.2.2-2]", V311, 0, hx("92 03 00 01 00"), ErrFlags, MalformedPacket},
	{"UNSUBACK flags 0001 [MQTT-2.1.3-1]", V5, 0, hx("b1 02 00 01"), ErrFlags, MalformedPacket},
	{"remaining length of 5 bytes (1.5.5: at most 4)", V311, 0, hx("30 ff ff ff ff 7f"), ErrVarintTooLong, MalformedPacket},
	{"remaining length 0x80 0x00 not minimal [MQTT-1.5.5-1]", V311, 0, hx("c0 80 00"), ErrVarintNotMinimal, MalformedPacket},
	{"remaining length 0x80 0x80 0x00 not minimal [MQTT-1.5.5-1]", V5, 0, hx("c0 80 80 00"), ErrVarintNotMinimal, MalformedPacket},
	{"remaining length 0xff 0x00 (127 in 2 bytes) not minimal [MQTT-1.5.5-1]", V5, 0, hx("30 ff 00"), ErrVarintNotMinimal, MalformedPacket},
	{"PUBLISH before CONNECT [MQTT-3.1.0-1]", 0, 0, hx("30 05 00 03 61 2f 62"), ErrNotConnected, ProtocolError},
	{"PINGREQ before CONNECT [MQTT-3.1.0-1]", 0, 0, hx("c0 00"), ErrNotConnected, ProtocolError},
	{"SUBSCRIBE before CONNECT [MQTT-3.1.0-1]", 0, 0, subscribe311("a", 0), ErrNotConnected, ProtocolError},
	{"packet over the maximum packet size", V311, 11, hx("30 0a 00 03 61 2f 62 68 65 6c 6c 6f"), ErrPacketTooLarge, PacketTooLarge},
	{"hostile remaining length over the maximum packet size", V5, 1024, hx("30 ff ff ff 7f"), ErrPacketTooLarge, PacketTooLarge},
	{"PINGREQ with a body", V311, 0, hx("c0 01 00"), ErrTrailing, MalformedPacket},
	{"PINGRESP with a body", V5, 0, hx("d0 01 00"), ErrTrailing, MalformedPacket},

	// PUBLISH. Not here: [MQTT-3.3.4-6] (no Subscription Identifier in a
	// PUBLISH from client to server). The decoder does not know which way a
	// packet travels and must accept the identifiers a server sends, so the
	// broker enforces it on its read side.
	{"PUBLISH QoS 3 [MQTT-3.3.1-4]", V311, 0, hx("36 07 00 03 61 2f 62 00 01"), ErrQoS3, MalformedPacket},
	{"PUBLISH QoS 3 at 3.1", V31, 0, hx("37 07 00 03 61 2f 62 00 01"), ErrQoS3, MalformedPacket},
	{"PUBLISH QoS 3 at 5.0 [MQTT-3.3.1-4]", V5, 0, hx("36 08 00 03 61 2f 62 00 01 00"), ErrQoS3, MalformedPacket},
	{"PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]", V311, 0, hx("38 05 00 03 61 2f 62"), ErrDupQoS0, MalformedPacket},
	{"PUBLISH DUP on QoS 0 at 5.0 [MQTT-3.3.1-2]", V5, 0, hx("39 06 00 03 61 2f 62 00"), ErrDupQoS0, MalformedPacket},
	{"PUBLISH QoS 1 packet id 0 [MQTT-2.3.1-1]", V311, 0, hx("32 07 00 03 61 2f 62 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBLISH QoS 2 packet id 0 at 5.0 (as 3.1.1 [MQTT-2.3.1-1])", V5, 0, hx("34 08 00 03 61 2f 62 00 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBLISH QoS 1 without packet id", V311, 0, hx("32 05 00 03 61 2f 62"), ErrShort, MalformedPacket},
	{"PUBLISH topic invalid UTF-8 0xff [MQTT-1.5.3-1] [MQTT-3.3.2-1]", V311, 0, pkt(0x30, hx("00 02 61 ff")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic invalid UTF-8 at 5.0 [MQTT-1.5.4-1] [MQTT-3.3.2-1]", V5, 0, pkt(0x30, hx("00 02 61 ff 00")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic surrogate U+D800 ED A0 80 [MQTT-1.5.3-1]", V311, 0, pkt(0x30, hx("00 03 ed a0 80")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic surrogate U+DFFF ED BF BF at 5.0 [MQTT-1.5.4-1]", V5, 0, pkt(0x30, hx("00 04 61 ed bf bf 00")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic overlong C0 AF [MQTT-1.5.3-1]", V311, 0, pkt(0x30, hx("00 02 c0 af")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic truncated sequence E2 82 [MQTT-1.5.3-1]", V311, 0, pkt(0x30, hx("00 02 e2 82")), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH topic U+0000 [MQTT-1.5.3-2] [MQTT-4.7.3-2]", V311, 0, pkt(0x30, hx("00 03 61 00 62")), ErrNullChar, MalformedPacket},
	{"PUBLISH topic U+0000 after a multi-byte char at 5.0 [MQTT-1.5.4-2] [MQTT-4.7.3-2]", V5, 0, pkt(0x30, hx("00 04 c3 a9 00 61 00")), ErrNullChar, MalformedPacket},
	{"PUBLISH topic a/+ wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1]", V311, 0, pkt(0x30, str("a/+")), ErrTopicWildcard, TopicNameInvalid},
	{"PUBLISH topic a/# wildcard at 3.1", V31, 0, pkt(0x30, str("a/#")), ErrTopicWildcard, TopicNameInvalid},
	{"PUBLISH topic # wildcard at 5.0 [MQTT-3.3.2-2] [MQTT-4.7.0-1]", V5, 0, pkt(0x30, str("#"), hx("00")), ErrTopicWildcard, TopicNameInvalid},
	{"PUBLISH empty topic at 3.1.1 [MQTT-4.7.3-1]", V311, 0, hx("30 02 00 00"), ErrTopicEmpty, MalformedPacket},
	{"PUBLISH empty topic at 3.1 [MQTT-4.7.3-1]", V31, 0, hx("30 03 00 00 78"), ErrTopicEmpty, MalformedPacket},
	{"PUBLISH empty topic without topic alias at 5.0 (3.3.2.3.4)", V5, 0, hx("30 03 00 00 00"), ErrTopicNoAlias, ProtocolError},
	{"PUBLISH topic alias 0 [MQTT-3.3.2-8]", V5, 0, publish5(prop(PropTopicAlias, u16(0))), ErrTopicAliasZero, TopicAliasInvalid},
	{"PUBLISH response topic with wildcard [MQTT-3.3.2-14]", V5, 0, publish5(prop(PropResponseTopic, str("r/+"))), ErrResponseTopic, ProtocolError},
	{"PUBLISH response topic # [MQTT-3.3.2-14]", V5, 0, publish5(prop(PropResponseTopic, str("#"))), ErrResponseTopic, ProtocolError},
	{"PUBLISH response topic empty [MQTT-4.7.3-1]", V5, 0, publish5(prop(PropResponseTopic, str(""))), ErrResponseTopic, ProtocolError},
	{"PUBLISH response topic invalid UTF-8 [MQTT-3.3.2-13]", V5, 0, publish5(prop(PropResponseTopic, hx("00 01 80"))), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH content type U+0000 [MQTT-3.3.2-19]", V5, 0, publish5(prop(PropContentType, hx("00 01 00"))), ErrNullChar, MalformedPacket},
	{"PUBLISH user property name invalid UTF-8 [MQTT-1.5.7-1]", V5, 0, publish5(cat(hx("26 00 01 fe"), str("v"))), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH user property value surrogate [MQTT-1.5.7-1]", V5, 0, publish5(cat(hx("26"), str("k"), hx("00 03 ed a0 80"))), ErrInvalidUTF8, MalformedPacket},
	{"PUBLISH payload format indicator 2 (byte property value 2)", V5, 0, publish5(prop(PropPayloadFormat, hx("02"))), ErrPropertyValue, ProtocolError},
	{"PUBLISH subscription identifier 0", V5, 0, publish5(prop(PropSubscriptionID, hx("00"))), ErrPropertyValue, ProtocolError},
	{"PUBLISH subscription identifier of 5 bytes", V5, 0, publish5(prop(PropSubscriptionID, hx("ff ff ff ff 01"))), ErrVarintTooLong, MalformedPacket},
	{"PUBLISH subscription identifier not minimal [MQTT-1.5.5-1]", V5, 0, publish5(prop(PropSubscriptionID, hx("81 00"))), ErrVarintNotMinimal, MalformedPacket},
	{"PUBLISH property length not minimal [MQTT-1.5.5-1]", V5, 0, pkt(0x30, str("t"), hx("80 00")), ErrVarintNotMinimal, MalformedPacket},
	{"PUBLISH property identifier 0x26 in two bytes [MQTT-1.5.5-1]", V5, 0, publish5(cat(hx("a6 00"), str("k"), str("v"))), ErrVarintNotMinimal, MalformedPacket},
	{"PUBLISH session expiry not allowed (2.2.2.2)", V5, 0, publish5(prop(PropSessionExpiry, u32(1))), ErrPropertyNotAllowed, MalformedPacket},
	{"PUBLISH will delay not allowed (will properties only)", V5, 0, publish5(prop(PropWillDelay, u32(1))), ErrPropertyNotAllowed, MalformedPacket},
	{"PUBLISH reason string not allowed", V5, 0, publish5(prop(PropReasonString, str("r"))), ErrPropertyNotAllowed, MalformedPacket},
	{"PUBLISH unknown property 0x00", V5, 0, publish5(hx("00 00")), ErrPropertyUnknown, MalformedPacket},
	{"PUBLISH unknown property 0x04", V5, 0, publish5(hx("04 00 00 00 00")), ErrPropertyUnknown, MalformedPacket},
	{"PUBLISH unknown property 0x2B", V5, 0, publish5(hx("2b 00")), ErrPropertyUnknown, MalformedPacket},
	{"PUBLISH unknown property 128 (two-byte identifier)", V5, 0, publish5(hx("80 01 00")), ErrPropertyUnknown, MalformedPacket},
	{"PUBLISH message expiry repeated", V5, 0, publish5(prop(PropMessageExpiry, u32(1)), prop(PropMessageExpiry, u32(2))), ErrPropertyRepeated, ProtocolError},
	{"PUBLISH topic alias repeated", V5, 0, publish5(prop(PropTopicAlias, u16(1)), prop(PropTopicAlias, u16(1))), ErrPropertyRepeated, ProtocolError},
	{"PUBLISH correlation data repeated", V5, 0, publish5(prop(PropCorrelationData, str("a")), prop(PropCorrelationData, str("b"))), ErrPropertyRepeated, ProtocolError},
	{"PUBLISH property length past the packet", V5, 0, pkt(0x30, str("t"), hx("05 01 01")), ErrShort, MalformedPacket},
	{"PUBLISH property value past the property length", V5, 0, pkt(0x30, str("t"), hx("03 02 00 00"), hx("00 00")), ErrShort, MalformedPacket},
	{"PUBLISH without property length at 5.0 [MQTT-2.2.2-1]", V5, 0, pkt(0x30, str("t")), ErrShort, MalformedPacket},
	{"PUBLISH topic longer than the packet", V311, 0, hx("30 03 00 05 61"), ErrShort, MalformedPacket},
	{"PUBLISH topic length cut", V311, 0, hx("30 01 00"), ErrShort, MalformedPacket},

	// CONNECT. Each row is a CONNECT the server must refuse, closing the
	// connection [MQTT-3.1.4-1]; the codec's part is to report it.
	{"CONNECT protocol name MQTX [MQTT-3.1.2-1]", 0, 0, pkt(0x10, str("MQTX"), hx("04 02 00 3c"), str("c")), ErrProtocolName, UnsupportedProtocolVersion},
	{"CONNECT protocol name mqtt lower case [MQTT-3.1.2-1]", V311, 0, pkt(0x10, str("mqtt"), hx("04 02 00 3c"), str("c")), ErrProtocolName, UnsupportedProtocolVersion},
	{"CONNECT MQTT with level 3 [MQTT-3.1.2-2]", 0, 0, pkt(0x10, str("MQTT"), hx("03 02 00 3c"), str("c")), ErrProtocolVersion, UnsupportedProtocolVersion},
	{"CONNECT MQTT with level 6 [MQTT-3.1.2-2]", 0, 0, pkt(0x10, str("MQTT"), hx("06 02 00 3c"), str("c")), ErrProtocolVersion, UnsupportedProtocolVersion},
	{"CONNECT MQIsdp with level 4 [MQTT-3.1.2-2]", 0, 0, pkt(0x10, str("MQIsdp"), hx("04 02 00 3c"), str("c")), ErrProtocolVersion, UnsupportedProtocolVersion},
	{"CONNECT reserved flag [MQTT-3.1.2-3]", 0, 0, connect311(0x03, str("c")), ErrConnectReserved, MalformedPacket},
	{"CONNECT reserved flag at 5.0 [MQTT-3.1.2-3]", 0, 0, connect5(0x01, hx("00"), str("c")), ErrConnectReserved, MalformedPacket},
	{"CONNECT will QoS without will flag [MQTT-3.1.2-13] [MQTT-3.1.2-11]", 0, 0, connect311(0x0a, str("c")), ErrWillFlags, MalformedPacket},
	{"CONNECT will retain without will flag [MQTT-3.1.2-15]", 0, 0, connect311(0x22, str("c")), ErrWillFlags, MalformedPacket},
	{"CONNECT 5.0 will QoS without will flag [MQTT-3.1.2-11]", 0, 0, connect5(0x12, hx("00"), str("c")), ErrWillFlags, MalformedPacket},
	{"CONNECT 5.0 will retain without will flag [MQTT-3.1.2-13]", 0, 0, connect5(0x20, hx("00"), str("c")), ErrWillFlags, MalformedPacket},
	{"CONNECT will QoS 3 [MQTT-3.1.2-14]", 0, 0, connect311(0x1e, str("c"), str("w"), str("m")), ErrQoS3, MalformedPacket},
	{"CONNECT 5.0 will QoS 3 [MQTT-3.1.2-12]", 0, 0, connect5(0x1e, hx("00"), str("c"), hx("00"), str("w"), str("m")), ErrQoS3, MalformedPacket},
	{"CONNECT password without user name at 3.1.1 [MQTT-3.1.2-22]", 0, 0, connect311(0x42, str("c"), str("p")), ErrPasswordNoUser, MalformedPacket},
	{"CONNECT password without user name at 3.1", 0, 0, pkt(0x10, str("MQIsdp"), hx("03 42 00 3c"), str("c"), str("p")), ErrPasswordNoUser, MalformedPacket},
	{"CONNECT user name present with flag 0 [MQTT-3.1.2-18]", 0, 0, connect311(0x02, str("c"), str("u")), ErrTrailing, MalformedPacket},
	{"CONNECT password present with flag 0 [MQTT-3.1.2-20]", 0, 0, connect311(0x82, str("c"), str("u"), str("p")), ErrTrailing, MalformedPacket},
	{"CONNECT will present with will flag 0 [MQTT-3.1.2-11]", 0, 0, connect311(0x02, str("c"), str("w"), str("m")), ErrTrailing, MalformedPacket},
	{"CONNECT 5.0 user name present with flag 0 [MQTT-3.1.2-16]", 0, 0, connect5(0x02, hx("00"), str("c"), str("u")), ErrTrailing, MalformedPacket},
	{"CONNECT 5.0 password present with flag 0 [MQTT-3.1.2-18]", 0, 0, connect5(0x82, hx("00"), str("c"), str("u"), str("p")), ErrTrailing, MalformedPacket},
	{"CONNECT trailing byte after the password", 0, 0, connect311(0xc2, str("c"), str("u"), str("p"), hx("00")), ErrTrailing, MalformedPacket},
	{"CONNECT user name flag 1 without user name [MQTT-3.1.2-19]", 0, 0, connect311(0x82, str("c")), ErrShort, MalformedPacket},
	{"CONNECT password flag 1 without password [MQTT-3.1.2-21]", 0, 0, connect311(0xc2, str("c"), str("u")), ErrShort, MalformedPacket},
	{"CONNECT 5.0 user name flag 1 without user name [MQTT-3.1.2-17]", 0, 0, connect5(0x82, hx("00"), str("c")), ErrShort, MalformedPacket},
	{"CONNECT 5.0 password flag 1 without password [MQTT-3.1.2-19]", 0, 0, connect5(0x42, hx("00"), str("c")), ErrShort, MalformedPacket},
	{"CONNECT will flag 1 without will topic [MQTT-3.1.2-9]", 0, 0, connect311(0x06, str("c")), ErrShort, MalformedPacket},
	{"CONNECT will flag 1 without will message [MQTT-3.1.2-9]", 0, 0, connect311(0x06, str("c"), str("w")), ErrShort, MalformedPacket},
	{"CONNECT 5.0 will flag 1 without will properties [MQTT-3.1.2-9]", 0, 0, connect5(0x06, hx("00"), str("c")), ErrShort, MalformedPacket},
	{"CONNECT without ClientId [MQTT-3.1.3-3]", 0, 0, connect311(0x02), ErrShort, MalformedPacket},
	{"CONNECT ClientId invalid UTF-8 [MQTT-3.1.3-4]", 0, 0, connect311(0x02, hx("00 02 63 ff")), ErrInvalidUTF8, MalformedPacket},
	{"CONNECT 5.0 ClientId with U+0000 [MQTT-3.1.3-4]", 0, 0, connect5(0x02, hx("00"), hx("00 01 00")), ErrNullChar, MalformedPacket},
	{"CONNECT will topic invalid UTF-8 [MQTT-3.1.3-10]", 0, 0, connect311(0x06, str("c"), hx("00 03 ed a0 80"), str("m")), ErrInvalidUTF8, MalformedPacket},
	{"CONNECT 5.0 will topic invalid UTF-8 [MQTT-3.1.3-11]", 0, 0, connect5(0x06, hx("00"), str("c"), hx("00"), hx("00 01 ff"), str("m")), ErrInvalidUTF8, MalformedPacket},
	{"CONNECT will topic with wildcard [MQTT-3.3.2-2]", 0, 0, connect311(0x06, str("c"), str("w/#"), str("m")), ErrTopicWildcard, TopicNameInvalid},
	{"CONNECT will topic empty [MQTT-4.7.3-1]", 0, 0, connect311(0x06, str("c"), str(""), str("m")), ErrTopicEmpty, MalformedPacket},
	{"CONNECT user name invalid UTF-8 [MQTT-3.1.3-11]", 0, 0, connect311(0x82, str("c"), hx("00 01 c0")), ErrInvalidUTF8, MalformedPacket},
	{"CONNECT 5.0 user name with U+0000 [MQTT-3.1.3-12]", 0, 0, connect5(0x82, hx("00"), str("c"), hx("00 02 75 00")), ErrNullChar, MalformedPacket},
	{"CONNECT protocol name cut", 0, 0, hx("10 03 00 04 4d"), ErrShort, MalformedPacket},
	{"CONNECT ends after the protocol name", 0, 0, hx("10 06 00 04 4d 51 54 54"), ErrShort, MalformedPacket},
	{"CONNECT ends before the keep alive", 0, 0, hx("10 08 00 04 4d 51 54 54 04 02"), ErrShort, MalformedPacket},
	{"CONNECT 5.0 without property length [MQTT-2.2.2-1]", 0, 0, pkt(0x10, str("MQTT"), hx("05 02 00 3c")), ErrShort, MalformedPacket},
	{"CONNECT 5.0 receive maximum 0", 0, 0, connect5(0x02, props(prop(PropReceiveMaximum, u16(0))), str("c")), ErrPropertyValue, ProtocolError},
	{"CONNECT 5.0 maximum packet size 0", 0, 0, connect5(0x02, props(prop(PropMaximumPacketSize, u32(0))), str("c")), ErrPropertyValue, ProtocolError},
	{"CONNECT 5.0 request problem information 2 (byte property value 2)", 0, 0, connect5(0x02, props(prop(PropRequestProblemInfo, hx("02"))), str("c")), ErrPropertyValue, ProtocolError},
	{"CONNECT 5.0 request response information 2", 0, 0, connect5(0x02, props(prop(PropRequestResponseInfo, hx("02"))), str("c")), ErrPropertyValue, ProtocolError},
	{"CONNECT 5.0 session expiry repeated", 0, 0, connect5(0x02, props(prop(PropSessionExpiry, u32(1)), prop(PropSessionExpiry, u32(1))), str("c")), ErrPropertyRepeated, ProtocolError},
	{"CONNECT 5.0 authentication method repeated", 0, 0, connect5(0x02, props(prop(PropAuthMethod, str("a")), prop(PropAuthMethod, str("a"))), str("c")), ErrPropertyRepeated, ProtocolError},
	{"CONNECT 5.0 will delay in CONNECT properties", 0, 0, connect5(0x02, props(prop(PropWillDelay, u32(1))), str("c")), ErrPropertyNotAllowed, MalformedPacket},
	{"CONNECT 5.0 topic alias in CONNECT properties", 0, 0, connect5(0x02, props(prop(PropTopicAlias, u16(1))), str("c")), ErrPropertyNotAllowed, MalformedPacket},
	{"CONNECT 5.0 session expiry in will properties", 0, 0, connect5(0x06, hx("00"), str("c"), props(prop(PropSessionExpiry, u32(1))), str("w"), str("m")), ErrPropertyNotAllowed, MalformedPacket},
	{"CONNECT 5.0 will payload format 2", 0, 0, connect5(0x06, hx("00"), str("c"), props(prop(PropPayloadFormat, hx("02"))), str("w"), str("m")), ErrPropertyValue, ProtocolError},
	{"CONNECT 5.0 will response topic with wildcard [MQTT-3.3.2-14]", 0, 0, connect5(0x06, hx("00"), str("c"), props(prop(PropResponseTopic, str("+"))), str("w"), str("m")), ErrResponseTopic, ProtocolError},

	// CONNACK.
	{"CONNACK 3.1.1 reserved acknowledge flag bits (3.2.2.1)", V311, 0, hx("20 02 02 00"), ErrConnackFlags, MalformedPacket},
	{"CONNACK 3.1 session present (no such flag in 3.1)", V31, 0, hx("20 02 01 00"), ErrConnackFlags, MalformedPacket},
	{"CONNACK read before CONNECT as 3.1.1, reserved bits", 0, 0, hx("20 02 fe 00"), ErrConnackFlags, MalformedPacket},
	{"CONNACK 5.0 reserved acknowledge flag bits [MQTT-3.2.2-1]", V5, 0, hx("20 03 80 00 00"), ErrConnackFlags, MalformedPacket},
	{"CONNACK 3.1.1 return code 6 (reserved)", V311, 0, hx("20 02 00 06"), ErrReasonCode, MalformedPacket},
	{"CONNACK 3.1.1 return code 0x80 (a 5.0 code)", V311, 0, hx("20 02 00 80"), ErrReasonCode, MalformedPacket},
	{"CONNACK 5.0 reason code 0x04 not in its table [MQTT-3.2.2-8]", V5, 0, hx("20 03 00 04 00"), ErrReasonCode, MalformedPacket},
	{"CONNACK 5.0 reason code 0x8B not in its table [MQTT-3.2.2-8]", V5, 0, hx("20 03 00 8b 00"), ErrReasonCode, MalformedPacket},
	{"CONNACK 5.0 topic alias not allowed", V5, 0, pkt(0x20, hx("00 00"), props(prop(PropTopicAlias, u16(1)))), ErrPropertyNotAllowed, MalformedPacket},
	{"CONNACK 5.0 maximum QoS 2 (byte property value 2)", V5, 0, pkt(0x20, hx("00 00"), props(prop(PropMaximumQoS, hx("02")))), ErrPropertyValue, ProtocolError},
	{"CONNACK 5.0 retain available 2", V5, 0, pkt(0x20, hx("00 00"), props(prop(PropRetainAvailable, hx("02")))), ErrPropertyValue, ProtocolError},
	{"CONNACK 5.0 shared subscription available 0xff", V5, 0, pkt(0x20, hx("00 00"), props(prop(PropSharedSubAvailable, hx("ff")))), ErrPropertyValue, ProtocolError},
	{"CONNACK 5.0 assigned client id repeated", V5, 0, pkt(0x20, hx("00 00"), props(prop(PropAssignedClientID, str("a")), prop(PropAssignedClientID, str("a")))), ErrPropertyRepeated, ProtocolError},
	{"CONNACK 5.0 without property length [MQTT-2.2.2-1]", V5, 0, hx("20 02 00 00"), ErrShort, MalformedPacket},
	{"CONNACK 3.1.1 trailing byte", V311, 0, hx("20 03 00 00 00"), ErrTrailing, MalformedPacket},
	{"CONNACK 3.1.1 cut", V311, 0, hx("20 01 00"), ErrShort, MalformedPacket},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{"PUBACK packet id 0 [MQTT-2.3.1-1]", V311, 0, hx("40 02 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBREC packet id 0 at 5.0 (as 3.1.1 [MQTT-2.3.1-1])", V5, 0, hx("50 02 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBREL packet id 0 at 3.1 [MQTT-2.3.1-1]", V31, 0, hx("62 02 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBCOMP packet id 0 at 5.0 with reason code (as 3.1.1 [MQTT-2.3.1-1])", V5, 0, hx("70 03 00 00 00"), ErrPacketIDZero, MalformedPacket},
	{"PUBACK reason code 0x01 not in its table [MQTT-3.4.2-1]", V5, 0, hx("40 03 00 01 01"), ErrReasonCode, MalformedPacket},
	{"PUBREC reason code 0x92 not in its table [MQTT-3.5.2-1]", V5, 0, hx("50 03 00 01 92"), ErrReasonCode, MalformedPacket},
	{"PUBREL reason code 0x10 not in its table [MQTT-3.6.2-1]", V5, 0, hx("62 03 00 01 10"), ErrReasonCode, MalformedPacket},
	{"PUBCOMP reason code 0x80 not in its table [MQTT-3.7.2-1]", V5, 0, hx("70 03 00 01 80"), ErrReasonCode, MalformedPacket},
	{"PUBACK session expiry not allowed", V5, 0, pkt(0x40, hx("00 01 00"), props(prop(PropSessionExpiry, u32(1)))), ErrPropertyNotAllowed, MalformedPacket},
	{"PUBREL reason string invalid UTF-8 [MQTT-1.5.4-1]", V5, 0, pkt(0x62, hx("00 01 00"), props(prop(PropReasonString, hx("00 01 ff")))), ErrInvalidUTF8, MalformedPacket},
	{"PUBCOMP reason string repeated", V5, 0, pkt(0x70, hx("00 01 00"), props(prop(PropReasonString, str("a")), prop(PropReasonString, str("b")))), ErrPropertyRepeated, ProtocolError},
	{"PUBACK 5.0 byte after the properties", V5, 0, hx("40 05 00 01 00 00 ff"), ErrTrailing, MalformedPacket},
	{"PUBACK 3.1.1 reason code byte (none in 3.1.1)", V311, 0, hx("40 03 00 01 00"), ErrTrailing, MalformedPacket},
	{"PUBREC cut packet id", V311, 0, hx("50 01 00"), ErrShort, MalformedPacket},

	// SUBSCRIBE.
	{"SUBSCRIBE packet id 0 [MQTT-2.3.1-1]", V311, 0, pkt(0x82, hx("00 00"), str("a"), hx("00")), ErrPacketIDZero, MalformedPacket},
	{"SUBSCRIBE packet id 0 at 5.0 (as 3.1.1 [MQTT-2.3.1-1])", V5, 0, pkt(0x82, hx("00 00 00"), str("a"), hx("00")), ErrPacketIDZero, MalformedPacket},
	{"SUBSCRIBE empty payload [MQTT-3.8.3-3]", V311, 0, hx("82 02 00 01"), ErrNoFilters, ProtocolError},
	{"SUBSCRIBE empty payload at 5.0 [MQTT-3.8.3-2]", V5, 0, hx("82 03 00 01 00"), ErrNoFilters, ProtocolError},
	{"SUBSCRIBE 3.1.1 requested QoS reserved bit 2 [MQTT-3.8.3-4]", V311, 0, subscribe311("a", 0x04), ErrSubOptions, MalformedPacket},
	{"SUBSCRIBE 3.1.1 requested QoS reserved bit 7 [MQTT-3.8.3-4]", V311, 0, subscribe311("a", 0x80), ErrSubOptions, MalformedPacket},
	{"SUBSCRIBE 3.1 requested QoS reserved bits", V31, 0, subscribe311("a", 0xf1), ErrSubOptions, MalformedPacket},
	{"SUBSCRIBE 3.1.1 requested QoS 3 [MQTT-3.8.3-4]", V311, 0, subscribe311("a", 0x03), ErrQoS3, MalformedPacket},
	{"SUBSCRIBE 5.0 options reserved bit 6 [MQTT-3.8.3-5]", V5, 0, subscribe5("a", 0x40), ErrSubOptions, MalformedPacket},
	{"SUBSCRIBE 5.0 options reserved bits 6 and 7 [MQTT-3.8.3-5]", V5, 0, subscribe5("a", 0xc1), ErrSubOptions, MalformedPacket},
	{"SUBSCRIBE 5.0 maximum QoS 3 (3.8.3.1: Protocol Error)", V5, 0, subscribe5("a", 0x03), ErrMaxQoS3, ProtocolError},
	{"SUBSCRIBE 5.0 retain handling 3 (3.8.3.1)", V5, 0, subscribe5("a", 0x30), ErrRetainHandling, ProtocolError},
	{"SUBSCRIBE 5.0 no local on a shared subscription [MQTT-3.8.3-4]", V5, 0, subscribe5("$share/g/a", 0x04), ErrShareNoLocal, ProtocolError},
	{"SUBSCRIBE filter a/#/b [MQTT-4.7.1-2]", V311, 0, subscribe311("a/#/b", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter a/#/b [MQTT-4.7.1-1]", V5, 0, subscribe5("a/#/b", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE filter a+ [MQTT-4.7.1-3]", V311, 0, subscribe311("a+", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter a+ [MQTT-4.7.1-2]", V5, 0, subscribe5("a+", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE filter +a [MQTT-4.7.1-3]", V31, 0, subscribe311("+a", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE filter #a [MQTT-4.7.1-2]", V311, 0, subscribe311("#a", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter a# [MQTT-4.7.1-1]", V5, 0, subscribe5("a#", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE empty filter [MQTT-4.7.3-1]", V311, 0, subscribe311("", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share//x [MQTT-4.8.2-1]", V5, 0, subscribe5("$share//x", 0), ErrShareInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share/g [MQTT-4.8.2-2]", V5, 0, subscribe5("$share/g", 0), ErrShareInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share/g/ [MQTT-4.8.2-2]", V5, 0, subscribe5("$share/g/", 0), ErrShareInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share/g+/x [MQTT-4.8.2-2]", V5, 0, subscribe5("$share/g+/x", 0), ErrShareInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share/#/x [MQTT-4.8.2-2]", V5, 0, subscribe5("$share/#/x", 0), ErrShareInvalid, TopicFilterInvalid},
	{"SUBSCRIBE 5.0 filter $share/g/a/#/b [MQTT-4.8.2-2]", V5, 0, subscribe5("$share/g/a/#/b", 0), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE filter invalid UTF-8 [MQTT-3.8.3-1]", V311, 0, pkt(0x82, hx("00 01 00 01 ff 00")), ErrInvalidUTF8, MalformedPacket},
	{"SUBSCRIBE 5.0 filter with U+0000 [MQTT-3.8.3-1] [MQTT-4.7.3-2]", V5, 0, pkt(0x82, hx("00 01 00 00 02 61 00 00")), ErrNullChar, MalformedPacket},
	{"SUBSCRIBE second filter bad after a good one", V311, 0, pkt(0x82, hx("00 01"), str("a"), hx("00"), str("b+"), hx("00")), ErrFilterInvalid, TopicFilterInvalid},
	{"SUBSCRIBE options byte missing", V311, 0, pkt(0x82, hx("00 01"), str("a")), ErrShort, MalformedPacket},
	{"SUBSCRIBE subscription identifier 0", V5, 0, pkt(0x82, hx("00 01"), props(prop(PropSubscriptionID, hx("00"))), str("a"), hx("00")), ErrPropertyValue, ProtocolError},
	{"SUBSCRIBE subscription identifier repeated", V5, 0, pkt(0x82, hx("00 01"), props(prop(PropSubscriptionID, hx("01")), prop(PropSubscriptionID, hx("02"))), str("a"), hx("00")), ErrPropertyRepeated, ProtocolError},
	{"SUBSCRIBE topic alias not allowed", V5, 0, pkt(0x82, hx("00 01"), props(prop(PropTopicAlias, u16(1))), str("a"), hx("00")), ErrPropertyNotAllowed, MalformedPacket},

	// SUBACK.
	{"SUBACK 3.1.1 return code 0x03 [MQTT-3.9.3-2]", V311, 0, hx("90 03 00 01 03"), ErrSubackCode, MalformedPacket},
	{"SUBACK 3.1.1 return code 0x8F (a 5.0 code) [MQTT-3.9.3-2]", V311, 0, hx("90 04 00 01 00 8f"), ErrSubackCode, MalformedPacket},
	{"SUBACK 5.0 reason code 0x03 [MQTT-3.9.3-2]", V5, 0, hx("90 04 00 01 00 03"), ErrReasonCode, MalformedPacket},
	{"SUBACK 5.0 reason code 0x11 (an UNSUBACK code) [MQTT-3.9.3-2]", V5, 0, hx("90 04 00 01 00 11"), ErrReasonCode, MalformedPacket},
	{"SUBACK packet id 0", V311, 0, hx("90 03 00 00 00"), ErrPacketIDZero, MalformedPacket},
	{"SUBACK without return codes [MQTT-3.8.4-5]", V311, 0, hx("90 02 00 01"), ErrShort, MalformedPacket},
	{"SUBACK 5.0 session expiry not allowed", V5, 0, pkt(0x90, hx("00 01"), props(prop(PropSessionExpiry, u32(1))), hx("00")), ErrPropertyNotAllowed, MalformedPacket},

	// UNSUBSCRIBE.
	{"UNSUBSCRIBE empty payload [MQTT-3.10.3-2]", V311, 0, hx("a2 02 00 01"), ErrNoFilters, ProtocolError},
	{"UNSUBSCRIBE empty payload at 5.0 [MQTT-3.10.3-2]", V5, 0, hx("a2 03 00 01 00"), ErrNoFilters, ProtocolError},
	{"UNSUBSCRIBE packet id 0 [MQTT-2.3.1-1]", V311, 0, pkt(0xa2, hx("00 00"), str("a")), ErrPacketIDZero, MalformedPacket},
	{"UNSUBSCRIBE filter a/#/b [MQTT-4.7.1-2]", V311, 0, pkt(0xa2, hx("00 01"), str("a/#/b")), ErrFilterInvalid, TopicFilterInvalid},
	{"UNSUBSCRIBE 5.0 filter $share/g [MQTT-4.8.2-2]", V5, 0, pkt(0xa2, hx("00 01 00"), str("$share/g")), ErrShareInvalid, TopicFilterInvalid},
	{"UNSUBSCRIBE filter invalid UTF-8 [MQTT-3.10.3-1]", V311, 0, pkt(0xa2, hx("00 01 00 03 ed a0 80")), ErrInvalidUTF8, MalformedPacket},
	{"UNSUBSCRIBE filter cut", V311, 0, pkt(0xa2, hx("00 01 00 05 61")), ErrShort, MalformedPacket},
	{"UNSUBSCRIBE 5.0 reason string not allowed", V5, 0, pkt(0xa2, hx("00 01"), props(prop(PropReasonString, str("r"))), str("a")), ErrPropertyNotAllowed, MalformedPacket},

	// UNSUBACK.
	{"UNSUBACK 3.1.1 trailing byte", V311, 0, hx("b0 03 00 01 00"), ErrTrailing, MalformedPacket},
	{"UNSUBACK 3.1.1 packet id 0", V311, 0, hx("b0 02 00 00"), ErrPacketIDZero, MalformedPacket},
	{"UNSUBACK 5.0 packet id 0", V5, 0, hx("b0 04 00 00 00 00"), ErrPacketIDZero, MalformedPacket},
	{"UNSUBACK 5.0 reason code 0x12 [MQTT-3.11.3-2]", V5, 0, hx("b0 04 00 01 00 12"), ErrReasonCode, MalformedPacket},
	{"UNSUBACK 5.0 reason code 0x01 (a SUBACK code) [MQTT-3.11.3-2]", V5, 0, hx("b0 04 00 01 00 01"), ErrReasonCode, MalformedPacket},
	{"UNSUBACK 5.0 without reason codes", V5, 0, hx("b0 03 00 01 00"), ErrShort, MalformedPacket},

	// DISCONNECT.
	{"DISCONNECT 3.1.1 with a body", V311, 0, hx("e0 01 00"), ErrTrailing, MalformedPacket},
	{"DISCONNECT 5.0 reason code 0x05 [MQTT-3.14.2-1]", V5, 0, hx("e0 01 05"), ErrReasonCode, MalformedPacket},
	{"DISCONNECT 5.0 reason code 0x18 (an AUTH code) [MQTT-3.14.2-1]", V5, 0, hx("e0 01 18"), ErrReasonCode, MalformedPacket},
	{"DISCONNECT 5.0 topic alias not allowed", V5, 0, pkt(0xe0, hx("00"), props(prop(PropTopicAlias, u16(1)))), ErrPropertyNotAllowed, MalformedPacket},
	{"DISCONNECT 5.0 byte after the properties", V5, 0, hx("e0 03 00 00 ff"), ErrTrailing, MalformedPacket},
	{"DISCONNECT 5.0 property length past the packet", V5, 0, hx("e0 02 00 03"), ErrShort, MalformedPacket},

	// AUTH.
	{"AUTH reason code 0x01 [MQTT-3.15.2-1]", V5, 0, hx("f0 01 01"), ErrReasonCode, MalformedPacket},
	{"AUTH reason code 0x80 [MQTT-3.15.2-1]", V5, 0, hx("f0 02 80 00"), ErrReasonCode, MalformedPacket},
	{"AUTH session expiry not allowed", V5, 0, pkt(0xf0, hx("18"), props(prop(PropSessionExpiry, u32(1)))), ErrPropertyNotAllowed, MalformedPacket},
	{"AUTH authentication method repeated", V5, 0, pkt(0xf0, hx("18"), props(prop(PropAuthMethod, str("a")), prop(PropAuthMethod, str("a")))), ErrPropertyRepeated, ProtocolError},
	{"AUTH before CONNECT [MQTT-3.1.0-1]", 0, 0, hx("f0 00"), ErrNotConnected, ProtocolError},
}

func TestDecodeMalformed(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			if e, ok := tc.err.(*Error); !ok || e.Code != tc.code {
				t.Fatalf("row: %v does not carry code %v", tc.err, tc.code)
			}
			for _, reuse := range []bool{false, true} {
				d := &Decoder{Version: tc.level, MaxSize: tc.max, Reuse: reuse}
				p, n, err := d.Decode(tc.raw)
				if p != nil || !errors.Is(err, tc.err) {
					t.Fatalf("Reuse %v: Decode(% x) = %s, %d, %v; want error %v", reuse, tc.raw, show(p), n, err, tc.err)
				}
				if c := errCode(err); c != tc.code {
					t.Errorf("Reuse %v: code %v (0x%02x), want %v (0x%02x)", reuse, c, byte(c), tc.code, byte(tc.code))
				}
				// Errors in the fixed header come before the length is known.
				if _, _, herr := Header(tc.raw, tc.max); herr != nil {
					if n != 0 {
						t.Errorf("Reuse %v: header error with n = %d, want 0", reuse, n)
					}
				} else if n != len(tc.raw) {
					t.Errorf("Reuse %v: n = %d, want the packet length %d", reuse, n, len(tc.raw))
				}
				if d.Version != tc.level {
					t.Errorf("Reuse %v: a refused packet changed the decoder level to %d", reuse, d.Version)
				}
			}
		})
	}
}
