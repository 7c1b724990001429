package packet

import "errors"

// Error is a decoding or validation failure. Code is the 5.0 reason code the
// receiver answers with (in CONNACK before a session exists, in DISCONNECT
// after); on 3.1 and 3.1.1 connections the answer is to close the connection.
type Error struct {
	Code ReasonCode
	Msg  string
}

func (e *Error) Error() string { return "packet: " + e.Msg + " (" + e.Code.String() + ")" }

// Is lets errors.Is match errors by reason code and message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Msg == e.Msg
}

func malformed(msg string) *Error   { return &Error{Code: MalformedPacket, Msg: msg} }
func protocolErr(msg string) *Error { return &Error{Code: ProtocolError, Msg: msg} }

// Errors a decoder returns. Each names, where there is one, the specification
// statement it enforces.
var (
	ErrPacketTooLarge     = &Error{PacketTooLarge, "packet exceeds the maximum packet size"}
	ErrVarintTooLong      = malformed("variable byte integer longer than 4 bytes")
	ErrVarintNotMinimal   = malformed("variable byte integer not in its shortest form") // [MQTT-1.5.5-1]
	ErrReservedType       = malformed("reserved packet type")
	ErrFlags              = malformed("fixed header flags differ from the reserved values") // [MQTT-2.2.2-2] [MQTT-2.1.3-1]
	ErrShort              = malformed("packet ends before its fields do")
	ErrTrailing           = malformed("packet has bytes after its last field")
	ErrInvalidUTF8        = malformed("string is not well-formed UTF-8")                                           // [MQTT-1.5.3-1] [MQTT-1.5.4-1]
	ErrNullChar           = malformed("string contains U+0000")                                                    // [MQTT-1.5.3-2] [MQTT-1.5.4-2]
	ErrQoS3               = malformed("QoS 3 is not allowed")                                                      // [MQTT-3.3.1-4]
	ErrDupQoS0            = malformed("DUP flag set on a QoS 0 PUBLISH")                                           // [MQTT-3.3.1-2]
	ErrPacketIDZero       = malformed("packet identifier is zero")                                                 // [MQTT-2.3.1-1]
	ErrTopicWildcard      = &Error{TopicNameInvalid, "topic name contains a wildcard"}                             // [MQTT-3.3.2-2] [MQTT-4.7.1-1]
	ErrTopicEmpty         = malformed("topic name is empty")                                                       // [MQTT-4.7.3-1]
	ErrTopicAliasZero     = &Error{TopicAliasInvalid, "topic alias 0 is not allowed"}                              // [MQTT-3.3.2-8]
	ErrTopicNoAlias       = protocolErr("empty topic name without a topic alias")                                  // 5.0 3.3.2.3.4
	ErrFilterInvalid      = &Error{TopicFilterInvalid, "topic filter has a misplaced wildcard or is empty"}        // [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]
	ErrShareInvalid       = &Error{TopicFilterInvalid, "shared subscription filter is not $share/{name}/{filter}"} // [MQTT-4.8.2-1] [MQTT-4.8.2-2]
	ErrShareNoLocal       = protocolErr("no local set on a shared subscription")                                   // [MQTT-3.8.3-4]
	ErrNoFilters          = protocolErr("SUBSCRIBE or UNSUBSCRIBE without topic filters")                          // [MQTT-3.8.3-3] [MQTT-3.10.3-2]
	ErrSubOptions         = malformed("subscription options have reserved bits set")                               // [MQTT-3.8.3-4] [MQTT-3.8.3-5]
	ErrRetainHandling     = protocolErr("retain handling 3 is not allowed")
	ErrMaxQoS3            = protocolErr("subscription options request maximum QoS 3")                      // 5.0 3.8.3.1
	ErrProtocolName       = &Error{UnsupportedProtocolVersion, "protocol name is neither MQTT nor MQIsdp"} // [MQTT-3.1.2-1]
	ErrProtocolVersion    = &Error{UnsupportedProtocolVersion, "unsupported protocol level"}               // [MQTT-3.1.2-2]
	ErrConnectReserved    = malformed("CONNECT reserved flag is set")                                      // [MQTT-3.1.2-3]
	ErrWillFlags          = malformed("will QoS or retain set without the will flag")                      // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
	ErrPasswordNoUser     = malformed("password flag set without the user name flag")                      // [MQTT-3.1.2-22]
	ErrNotConnected       = protocolErr("first packet is not CONNECT")                                     // [MQTT-3.1.0-1]
	ErrReasonCode         = malformed("reason code not allowed in this packet")
	ErrSubackCode         = malformed("SUBACK return code is not 0x00, 0x01, 0x02 or 0x80") // [MQTT-3.9.3-2]
	ErrConnackFlags       = malformed("CONNACK acknowledge flags have reserved bits set")   // [MQTT-3.2.2-1]
	ErrPropertyUnknown    = malformed("unknown property identifier")
	ErrPropertyNotAllowed = malformed("property not allowed in this packet")
	ErrPropertyRepeated   = protocolErr("property included more than once")
	ErrPropertyValue      = protocolErr("property value out of range")
	// ErrTooManyUserProperties: more than Decoder.MaxUserProperties.
	ErrTooManyUserProperties = &Error{QuotaExceeded, "more user properties in one packet than the server accepts"}
	ErrResponseTopic         = protocolErr("response topic is empty or contains a wildcard") // [MQTT-3.3.2-14]
	ErrStringTooLong         = errors.New("packet: string or binary field longer than 65535 bytes")
	ErrRemainingTooLong      = errors.New("packet: remaining length over 268435455 bytes")
	ErrEncodeQoS             = errors.New("packet: QoS above 2")
	ErrEncodeType            = errors.New("packet: packet type does not exist at this protocol level")
)
