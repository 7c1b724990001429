package packet

import (
	"bytes"
	"testing"
)

// validCase is a well-formed packet: raw decodes to pkt at level, and pkt
// encodes to raw (or to enc, when raw is a valid but not the shortest form).
type validCase struct {
	name  string
	level byte
	raw   []byte
	pkt   Packet
	enc   []byte
}

// Property blocks shared by several rows.
var (
	// Every will property (5.0 3.1.3.2), in the order the encoder writes them.
	willPropsRaw = props(
		prop(PropPayloadFormat, hx("01")),
		prop(PropMessageExpiry, u32(120)),
		prop(PropContentType, str("text/plain")),
		prop(PropResponseTopic, str("will/reply")),
		prop(PropCorrelationData, str("\x00\x01")),
		prop(PropWillDelay, u32(30)),
		userProp("k", "v"),
	)
	willProps = Properties{
		Present:       set(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic, PropCorrelationData, PropWillDelay),
		PayloadFormat: 1, MessageExpiry: 120, ContentType: "text/plain", ResponseTopic: "will/reply",
		CorrelationData: []byte{0, 1}, WillDelay: 30, User: []UserProperty{{"k", "v"}},
	}

	// Every CONNECT property (5.0 3.1.2.11), a User Property repeated.
	connectPropsRaw = props(
		prop(PropSessionExpiry, u32(0xFFFFFFFF)),
		prop(PropAuthMethod, str("SCRAM-SHA-256")),
		prop(PropAuthData, str("client-first")),
		prop(PropRequestProblemInfo, hx("00")),
		prop(PropRequestResponseInfo, hx("01")),
		prop(PropReceiveMaximum, u16(20)),
		prop(PropTopicAliasMaximum, u16(10)),
		prop(PropMaximumPacketSize, u32(1<<20)),
		userProp("region", "eu"),
		userProp("region", "us"), // repeated User Property: allowed
	)
	connectProps = Properties{
		Present: set(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
			PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumPacketSize),
		SessionExpiry: 0xFFFFFFFF, AuthMethod: "SCRAM-SHA-256", AuthData: []byte("client-first"),
		RequestProblemInfo: 0, RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10,
		MaximumPacketSize: 1 << 20, User: []UserProperty{{"region", "eu"}, {"region", "us"}},
	}

	// Every CONNACK property (5.0 3.2.2.3).
	connackPropsRaw = props(
		prop(PropSessionExpiry, u32(3600)),
		prop(PropAssignedClientID, str("auto-1")),
		prop(PropServerKeepAlive, u16(30)),
		prop(PropAuthMethod, str("SCRAM-SHA-256")),
		prop(PropAuthData, str("server-final")),
		prop(PropResponseInfo, str("resp/")),
		prop(PropServerReference, str("other:1883")),
		prop(PropReasonString, str("welcome")),
		prop(PropReceiveMaximum, u16(100)),
		prop(PropTopicAliasMaximum, u16(0)),
		prop(PropMaximumQoS, hx("01")),
		prop(PropRetainAvailable, hx("00")),
		prop(PropMaximumPacketSize, u32(65536)),
		prop(PropWildcardSubAvailable, hx("01")),
		prop(PropSubIDAvailable, hx("00")),
		prop(PropSharedSubAvailable, hx("01")),
		userProp("server", "gannet"),
	)
	connackProps = Properties{
		Present: set(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
			PropAuthData, PropResponseInfo, PropServerReference, PropReasonString, PropReceiveMaximum,
			PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable, PropMaximumPacketSize,
			PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable),
		SessionExpiry: 3600, AssignedClientID: "auto-1", ServerKeepAlive: 30, AuthMethod: "SCRAM-SHA-256",
		AuthData: []byte("server-final"), ResponseInfo: "resp/", ServerReference: "other:1883",
		ReasonString: "welcome", ReceiveMaximum: 100, TopicAliasMaximum: 0, MaximumQoS: 1,
		RetainAvailable: 0, MaximumPacketSize: 65536, WildcardSubAvailable: 1, SubIDAvailable: 0,
		SharedSubAvailable: 1, User: []UserProperty{{"server", "gannet"}},
	}

	// Every PUBLISH property (5.0 3.3.2.3): two Subscription Identifiers
	// (allowed in PUBLISH) and a repeated User Property.
	publishPropsRaw = props(
		prop(PropPayloadFormat, hx("01")),
		prop(PropMessageExpiry, u32(3600)),
		prop(PropContentType, str("application/json")),
		prop(PropResponseTopic, str("reply/to")),
		prop(PropCorrelationData, hx("00 02 ca fe")),
		prop(PropTopicAlias, u16(7)),
		prop(PropSubscriptionID, vbi(1)),
		prop(PropSubscriptionID, vbi(268435455)),
		userProp("a", "1"),
		userProp("a", "2"),
	)
	publishProps = Properties{
		Present: set(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
			PropCorrelationData, PropTopicAlias),
		PayloadFormat: 1, MessageExpiry: 3600, ContentType: "application/json", ResponseTopic: "reply/to",
		CorrelationData: []byte{0xca, 0xfe}, TopicAlias: 7, SubscriptionIDs: []uint32{1, 268435455},
		User: []UserProperty{{"a", "1"}, {"a", "2"}},
	}

	// Reason String and User Property: the properties of acks, SUBACK, UNSUBACK.
	ackPropsRaw = props(prop(PropReasonString, str("why")), userProp("trace", "42"))
	ackProps    = Properties{Present: set(PropReasonString), ReasonString: "why",
		User: []UserProperty{{"trace", "42"}}}
)

var validCases = []validCase{
	// CONNECT.
	{name: "CONNECT 3.1 MQIsdp user+password", level: V31,
		raw: pkt(0x10, str("MQIsdp"), hx("03 c2 00 3c"), str("gannet-31"), str("u"), str("p")),
		pkt: &Connect{ProtocolName: "MQIsdp", Version: V31, CleanStart: true, KeepAlive: 60,
			ClientID: "gannet-31", UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("p")}},
	{name: "CONNECT 3.1 will QoS 2 retain [MQTT-3.1.2-9]", level: V31,
		raw: pkt(0x10, str("MQIsdp"), hx("03 36 00 00"), str("c"), str("w/t"), str("bye")),
		pkt: &Connect{ProtocolName: "MQIsdp", Version: V31, CleanStart: true, ClientID: "c", WillFlag: true,
			Will: Will{Topic: "w/t", Payload: []byte("bye"), QoS: 2, Retain: true}}},
	{name: "CONNECT 3.1.1 minimal, empty ClientId with CleanSession [MQTT-3.1.3-7]", level: V311,
		raw: hx("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"),
		pkt: &Connect{ProtocolName: "MQTT", Version: V311, CleanStart: true, KeepAlive: 60}},
	// 3.1.1 section 3.1.2.10, Figure 3.6: the variable header example
	// (flags 0xCE, keep alive 10), with a payload in the order of
	// [MQTT-3.1.3-1]: ClientId, Will Topic, Will Message, User Name, Password.
	{name: "CONNECT 3.1.1 spec example 3.1.2.10 [MQTT-3.1.3-1] [MQTT-3.1.2-19] [MQTT-3.1.2-21]", level: V311,
		raw: pkt(0x10, hx("00 04 4d 51 54 54 04 ce 00 0a"),
			str("cid"), str("will/t"), str("gone"), str("user"), str("pass")),
		pkt: &Connect{ProtocolName: "MQTT", Version: V311, CleanStart: true, KeepAlive: 10, ClientID: "cid",
			WillFlag: true, Will: Will{Topic: "will/t", Payload: []byte("gone"), QoS: 1},
			UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pass")}},
	{name: "CONNECT 3.1.1 UTF-8 example A U+2A6D4 as ClientId [MQTT-1.5.3-1]", level: V311,
		raw: pkt(0x10, str("MQTT"), hx("04 00 00 00"), hx("00 05 41 f0 aa 9b 94")),
		pkt: &Connect{ProtocolName: "MQTT", Version: V311, ClientID: "A\U0002A6D4"}},
	// 5.0 section 3.1.2.11, the variable header example: flags 0xCE, keep
	// alive 10, Session Expiry Interval 10; payload with every will property.
	{name: "CONNECT 5.0 spec example 3.1.2.11 with will properties [MQTT-3.1.2-9] [MQTT-3.1.3-1]", level: V5,
		raw: pkt(0x10, hx("00 04 4d 51 54 54 05 ce 00 0a 05 11 00 00 00 0a"),
			str("cid"), willPropsRaw, str("will/t"), str("gone"), str("user"), str("pass")),
		pkt: &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, KeepAlive: 10,
			Properties: Properties{Present: set(PropSessionExpiry), SessionExpiry: 10}, ClientID: "cid",
			WillFlag: true, Will: Will{Topic: "will/t", Payload: []byte("gone"), QoS: 1, Properties: willProps},
			UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pass")}},
	{name: "CONNECT 5.0 every property, password without user name (allowed in 5.0) [MQTT-3.1.2-19]", level: V5,
		raw: pkt(0x10, str("MQTT"), hx("05 42 00 00"), connectPropsRaw, str("c5"), str("secret")),
		pkt: &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, Properties: connectProps,
			ClientID: "c5", PasswordFlag: true, Password: []byte("secret")}},
	{name: "CONNECT 5.0 empty properties, will with empty properties and payload [MQTT-2.2.2-1]", level: V5,
		raw: pkt(0x10, str("MQTT"), hx("05 2c ff ff 00"), str("c"), hx("00"), str("t"), str("")),
		pkt: &Connect{ProtocolName: "MQTT", Version: V5, KeepAlive: 0xffff, ClientID: "c", WillFlag: true,
			Will: Will{Topic: "t", QoS: 1, Retain: true}}},

	// CONNACK.
	{name: "CONNACK 3.1 accepted", level: V31, raw: hx("20 02 00 00"), pkt: &Connack{}},
	{name: "CONNACK 3.1 not authorized", level: V31, raw: hx("20 02 00 05"), pkt: &Connack{ReasonCode: NotAuthorized}},
	{name: "CONNACK 3.1.1 session present", level: V311, raw: hx("20 02 01 00"), pkt: &Connack{SessionPresent: true}},
	{name: "CONNACK 3.1.1 return code 1", level: V311, raw: hx("20 02 00 01"), pkt: &Connack{ReasonCode: UnsupportedProtocolVersion}},
	{name: "CONNACK 3.1.1 return code 2", level: V311, raw: hx("20 02 00 02"), pkt: &Connack{ReasonCode: ClientIdentifierNotValid}},
	{name: "CONNACK 3.1.1 return code 3", level: V311, raw: hx("20 02 00 03"), pkt: &Connack{ReasonCode: ServerUnavailable}},
	{name: "CONNACK 3.1.1 return code 4", level: V311, raw: hx("20 02 00 04"), pkt: &Connack{ReasonCode: BadUserNameOrPassword}},
	{name: "CONNACK 3.1.1 return code 5", level: V311, raw: hx("20 02 00 05"), pkt: &Connack{ReasonCode: NotAuthorized}},
	{name: "CONNACK 5.0 no properties [MQTT-2.2.2-1]", level: V5, raw: hx("20 03 01 00 00"), pkt: &Connack{SessionPresent: true}},
	{name: "CONNACK 5.0 every property [MQTT-3.2.2-8]", level: V5,
		raw: pkt(0x20, hx("00 00"), connackPropsRaw), pkt: &Connack{Properties: connackProps}},
	{name: "CONNACK 5.0 use another server", level: V5,
		raw: pkt(0x20, hx("00 9c"), props(prop(PropServerReference, str("b:1883")))),
		pkt: &Connack{ReasonCode: UseAnotherServer, Properties: Properties{Present: set(PropServerReference), ServerReference: "b:1883"}}},

	// PUBLISH.
	{name: "PUBLISH 3.1 QoS 0 [MQTT-2.3.1-5]", level: V31, raw: hx("30 0a 00 03 61 2f 62 68 65 6c 6c 6f"),
		pkt: &Publish{Topic: "a/b", Payload: []byte("hello")}},
	{name: "PUBLISH 3.1 QoS 1 DUP RETAIN", level: V31, raw: hx("3b 08 00 03 61 2f 62 00 0a 78"),
		pkt: &Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 10, Payload: []byte("x")}},
	// 3.1.1 section 3.3.2.3, Figure 3.11: Topic Name "a/b", Packet Identifier 10.
	{name: "PUBLISH 3.1.1 spec example 3.3.2.3 [MQTT-3.3.2-1] [MQTT-2.3.1-1]", level: V311,
		raw: pkt(0x32, hx("00 03 61 2f 62 00 0a"), []byte("hi")),
		pkt: &Publish{QoS: 1, Topic: "a/b", PacketID: 10, Payload: []byte("hi")}},
	{name: "PUBLISH 3.1.1 QoS 2 retain empty payload", level: V311, raw: hx("35 07 00 03 61 2f 62 ff ff"),
		pkt: &Publish{QoS: 2, Retain: true, Topic: "a/b", PacketID: 0xffff}},
	{name: "PUBLISH 3.1.1 BOM kept in topic [MQTT-1.5.3-3]", level: V311, raw: hx("30 06 00 04 ef bb bf 61"),
		pkt: &Publish{Topic: "\ufeffa"}},
	{name: "PUBLISH 3.1.1 topic of one slash and $", level: V311, raw: pkt(0x30, str("$SYS/"), []byte{0}),
		pkt: &Publish{Topic: "$SYS/", Payload: []byte{0}}},
	{name: "PUBLISH 5.0 QoS 0 no properties [MQTT-2.2.2-1] [MQTT-2.2.1-2]", level: V5, raw: hx("30 05 00 01 61 00 70"),
		pkt: &Publish{Topic: "a", Payload: []byte("p")}},
	{name: "PUBLISH 5.0 every property, two subscription ids, repeated user property [MQTT-3.3.2-13] [MQTT-3.3.2-19] [MQTT-1.5.7-1]", level: V5,
		raw: pkt(0x32, str("a/b"), hx("12 34"), publishPropsRaw, []byte("{}")),
		pkt: &Publish{QoS: 1, Topic: "a/b", PacketID: 0x1234, Properties: publishProps, Payload: []byte("{}")}},
	{name: "PUBLISH 5.0 empty topic with topic alias", level: V5,
		raw: pkt(0x30, str(""), props(prop(PropTopicAlias, u16(3))), []byte("x")),
		pkt: &Publish{Properties: Properties{Present: set(PropTopicAlias), TopicAlias: 3}, Payload: []byte("x")}},
	{name: "PUBLISH 5.0 QoS 2 DUP BOM kept [MQTT-1.5.4-3]", level: V5,
		raw: pkt(0x3c, hx("00 04 ef bb bf 62"), hx("00 01 00")),
		pkt: &Publish{Dup: true, QoS: 2, Topic: "\ufeffb", PacketID: 1}},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{name: "PUBACK 3.1", level: V31, raw: hx("40 02 00 01"), pkt: &Puback{PacketID: 1}},
	{name: "PUBACK 3.1.1", level: V311, raw: hx("40 02 ff ff"), pkt: &Puback{PacketID: 0xffff}},
	{name: "PUBACK 5.0 success without reason code", level: V5, raw: hx("40 02 00 01"), pkt: &Puback{PacketID: 1}},
	{name: "PUBACK 5.0 reason code only [MQTT-3.4.2-1]", level: V5, raw: hx("40 03 00 01 10"),
		pkt: &Puback{PacketID: 1, ReasonCode: NoMatchingSubscribers}},
	{name: "PUBACK 5.0 reason code and properties", level: V5, raw: pkt(0x40, hx("00 01 97"), ackPropsRaw),
		pkt: &Puback{PacketID: 1, ReasonCode: QuotaExceeded, Properties: ackProps}},
	{name: "PUBACK 5.0 success with empty properties (decode only)", level: V5, raw: hx("40 04 00 01 00 00"),
		pkt: &Puback{PacketID: 1}, enc: hx("40 02 00 01")},
	{name: "PUBACK 5.0 reason code with empty properties (decode only)", level: V5, raw: hx("40 04 00 01 99 00"),
		pkt: &Puback{PacketID: 1, ReasonCode: PayloadFormatInvalid}, enc: hx("40 03 00 01 99")},
	{name: "PUBREC 3.1", level: V31, raw: hx("50 02 00 02"), pkt: &Pubrec{PacketID: 2}},
	{name: "PUBREC 3.1.1", level: V311, raw: hx("50 02 00 02"), pkt: &Pubrec{PacketID: 2}},
	{name: "PUBREC 5.0 success", level: V5, raw: hx("50 02 00 02"), pkt: &Pubrec{PacketID: 2}},
	{name: "PUBREC 5.0 reason code only [MQTT-3.5.2-1]", level: V5, raw: hx("50 03 00 02 91"),
		pkt: &Pubrec{PacketID: 2, ReasonCode: PacketIdentifierInUse}},
	{name: "PUBREC 5.0 reason code and properties", level: V5, raw: pkt(0x50, hx("00 02 90"), ackPropsRaw),
		pkt: &Pubrec{PacketID: 2, ReasonCode: TopicNameInvalid, Properties: ackProps}},
	{name: "PUBREL 3.1 [MQTT-3.6.1-1]", level: V31, raw: hx("62 02 00 03"), pkt: &Pubrel{PacketID: 3}},
	{name: "PUBREL 3.1.1 [MQTT-3.6.1-1]", level: V311, raw: hx("62 02 00 03"), pkt: &Pubrel{PacketID: 3}},
	{name: "PUBREL 5.0 success", level: V5, raw: hx("62 02 00 03"), pkt: &Pubrel{PacketID: 3}},
	{name: "PUBREL 5.0 reason code only [MQTT-3.6.2-1]", level: V5, raw: hx("62 03 00 03 92"),
		pkt: &Pubrel{PacketID: 3, ReasonCode: PacketIdentifierNotFound}},
	{name: "PUBREL 5.0 success with properties", level: V5, raw: pkt(0x62, hx("00 03 00"), ackPropsRaw),
		pkt: &Pubrel{PacketID: 3, Properties: ackProps}},
	{name: "PUBCOMP 3.1", level: V31, raw: hx("70 02 00 04"), pkt: &Pubcomp{PacketID: 4}},
	{name: "PUBCOMP 3.1.1", level: V311, raw: hx("70 02 00 04"), pkt: &Pubcomp{PacketID: 4}},
	{name: "PUBCOMP 5.0 success", level: V5, raw: hx("70 02 00 04"), pkt: &Pubcomp{PacketID: 4}},
	{name: "PUBCOMP 5.0 reason code only [MQTT-3.7.2-1]", level: V5, raw: hx("70 03 00 04 92"),
		pkt: &Pubcomp{PacketID: 4, ReasonCode: PacketIdentifierNotFound}},
	{name: "PUBCOMP 5.0 reason code and properties", level: V5, raw: pkt(0x70, hx("00 04 92"), ackPropsRaw),
		pkt: &Pubcomp{PacketID: 4, ReasonCode: PacketIdentifierNotFound, Properties: ackProps}},

	// SUBSCRIBE.
	{name: "SUBSCRIBE 3.1", level: V31, raw: pkt(0x82, hx("00 01"), str("a/b"), hx("01")),
		pkt: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}}}},
	// 3.1.1 section 3.8.3, Figure 3.22: "a/b" QoS 1, "c/d" QoS 2.
	{name: "SUBSCRIBE 3.1.1 spec example 3.8.3 [MQTT-3.8.1-1] [MQTT-3.8.3-1]", level: V311,
		raw: pkt(0x82, hx("00 0a"), hx("00 03 61 2f 62 01 00 03 63 2f 64 02")),
		pkt: &Subscribe{PacketID: 10, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}, {Filter: "c/d", QoS: 2}}}},
	{name: "SUBSCRIBE 3.1.1 wildcards [MQTT-4.7.1-2] [MQTT-4.7.1-3]", level: V311,
		raw: pkt(0x82, hx("00 0b"), str("#"), hx("00"), str("+/+/#"), hx("01"), str("/+/"), hx("02")),
		pkt: &Subscribe{PacketID: 11, Subscriptions: []Subscription{{Filter: "#"}, {Filter: "+/+/#", QoS: 1}, {Filter: "/+/", QoS: 2}}}},
	{name: "SUBSCRIBE 5.0 options, shared filter, subscription id [MQTT-4.8.2-1] [MQTT-4.8.2-2]", level: V5,
		raw: pkt(0x82, hx("00 0c"), props(prop(PropSubscriptionID, vbi(16384)), userProp("u", "")),
			str("a/+"), hx("2d"), str("$share/g/x/#"), hx("12"), str("#"), hx("00")),
		pkt: &Subscribe{PacketID: 12,
			Properties: Properties{SubscriptionIDs: []uint32{16384}, User: []UserProperty{{"u", ""}}},
			Subscriptions: []Subscription{
				{Filter: "a/+", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				{Filter: "$share/g/x/#", QoS: 2, RetainHandling: 1},
				{Filter: "#"},
			}}},
	{name: "SUBSCRIBE 5.0 no properties [MQTT-2.2.2-1]", level: V5, raw: pkt(0x82, hx("00 0d 00"), str("t"), hx("01")),
		pkt: &Subscribe{PacketID: 13, Subscriptions: []Subscription{{Filter: "t", QoS: 1}}}},

	// SUBACK.
	{name: "SUBACK 3.1", level: V31, raw: hx("90 05 00 01 00 01 02"),
		pkt: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{Success, GrantedQoS1, GrantedQoS2}}},
	// 3.1.1 section 3.9.3, Figure 3.26: 0x00, 0x02, 0x80, in the order of the filters.
	{name: "SUBACK 3.1.1 spec example 3.9.3 [MQTT-3.9.3-1] [MQTT-3.9.3-2]", level: V311, raw: hx("90 05 00 0a 00 02 80"),
		pkt: &Suback{PacketID: 10, ReasonCodes: []ReasonCode{Success, GrantedQoS2, UnspecifiedError}}},
	{name: "SUBACK 5.0 every reason code of its table [MQTT-3.9.3-1] [MQTT-3.9.3-2] [MQTT-3.8.4-6]", level: V5,
		raw: pkt(0x90, hx("00 0c"), ackPropsRaw, hx("00 01 02 80 83 87 8f 91 97 9e a1 a2")),
		pkt: &Suback{PacketID: 12, Properties: ackProps, ReasonCodes: []ReasonCode{
			Success, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecificError, NotAuthorized,
			TopicFilterInvalid, PacketIdentifierInUse, QuotaExceeded, SharedSubscriptionsNotSupported,
			SubscriptionIdentifiersNotSupported, WildcardSubscriptionsNotSupported}}},
	{name: "SUBACK 5.0 no properties", level: V5, raw: hx("90 04 00 0d 00 01"),
		pkt: &Suback{PacketID: 13, ReasonCodes: []ReasonCode{GrantedQoS1}}},

	// UNSUBSCRIBE.
	{name: "UNSUBSCRIBE 3.1", level: V31, raw: pkt(0xa2, hx("00 01"), str("a/b")),
		pkt: &Unsubscribe{PacketID: 1, Filters: []string{"a/b"}}},
	// 3.1.1 section 3.10.3, Figure 3.30: "a/b", "c/d".
	{name: "UNSUBSCRIBE 3.1.1 spec example 3.10.3 [MQTT-3.10.1-1] [MQTT-3.10.3-1]", level: V311,
		raw: pkt(0xa2, hx("00 0a"), hx("00 03 61 2f 62 00 03 63 2f 64")),
		pkt: &Unsubscribe{PacketID: 10, Filters: []string{"a/b", "c/d"}}},
	{name: "UNSUBSCRIBE 5.0 user property, shared filter", level: V5,
		raw: pkt(0xa2, hx("00 0b"), props(userProp("k", "v")), str("a/#"), str("$share/g/c/+")),
		pkt: &Unsubscribe{PacketID: 11, Properties: Properties{User: []UserProperty{{"k", "v"}}}, Filters: []string{"a/#", "$share/g/c/+"}}},

	// UNSUBACK.
	{name: "UNSUBACK 3.1", level: V31, raw: hx("b0 02 00 01"), pkt: &Unsuback{PacketID: 1}},
	{name: "UNSUBACK 3.1.1", level: V311, raw: hx("b0 02 00 0a"), pkt: &Unsuback{PacketID: 10}},
	{name: "UNSUBACK 5.0 every reason code of its table [MQTT-3.11.3-1] [MQTT-3.11.3-2]", level: V5,
		raw: pkt(0xb0, hx("00 0a"), ackPropsRaw, hx("00 11 80 83 87 8f 91")),
		pkt: &Unsuback{PacketID: 10, Properties: ackProps, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted,
			UnspecifiedError, ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse}}},
	{name: "UNSUBACK 5.0 no properties", level: V5, raw: hx("b0 05 00 0b 00 00 11"),
		pkt: &Unsuback{PacketID: 11, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}},

	// PINGREQ, PINGRESP.
	{name: "PINGREQ 3.1", level: V31, raw: hx("c0 00"), pkt: &Pingreq{}},
	{name: "PINGREQ 3.1.1", level: V311, raw: hx("c0 00"), pkt: &Pingreq{}},
	{name: "PINGREQ 5.0", level: V5, raw: hx("c0 00"), pkt: &Pingreq{}},
	{name: "PINGRESP 3.1", level: V31, raw: hx("d0 00"), pkt: &Pingresp{}},
	{name: "PINGRESP 3.1.1", level: V311, raw: hx("d0 00"), pkt: &Pingresp{}},
	{name: "PINGRESP 5.0", level: V5, raw: hx("d0 00"), pkt: &Pingresp{}},

	// DISCONNECT.
	{name: "DISCONNECT 3.1", level: V31, raw: hx("e0 00"), pkt: &Disconnect{}},
	{name: "DISCONNECT 3.1.1 [MQTT-3.14.1-1]", level: V311, raw: hx("e0 00"), pkt: &Disconnect{}},
	{name: "DISCONNECT 5.0 empty body: normal disconnection", level: V5, raw: hx("e0 00"), pkt: &Disconnect{}},
	{name: "DISCONNECT 5.0 reason code only [MQTT-3.14.2-1]", level: V5, raw: hx("e0 01 04"),
		pkt: &Disconnect{ReasonCode: DisconnectWithWill}},
	{name: "DISCONNECT 5.0 every property", level: V5,
		raw: pkt(0xe0, hx("8b"), props(prop(PropSessionExpiry, u32(0)), prop(PropServerReference, str("b")),
			prop(PropReasonString, str("bye")), userProp("k", "v"))),
		pkt: &Disconnect{ReasonCode: ServerShuttingDown, Properties: Properties{
			Present:       set(PropSessionExpiry, PropServerReference, PropReasonString),
			SessionExpiry: 0, ServerReference: "b", ReasonString: "bye", User: []UserProperty{{"k", "v"}}}}},
	{name: "DISCONNECT 5.0 success with empty properties (decode only)", level: V5, raw: hx("e0 02 00 00"),
		pkt: &Disconnect{}, enc: hx("e0 00")},
	{name: "DISCONNECT 5.0 reason code with empty properties (decode only)", level: V5, raw: hx("e0 02 8e 00"),
		pkt: &Disconnect{ReasonCode: SessionTakenOver}, enc: hx("e0 01 8e")},

	// AUTH.
	{name: "AUTH 5.0 empty body", level: V5, raw: hx("f0 00"), pkt: &Auth{}},
	{name: "AUTH 5.0 continue, every property [MQTT-3.15.2-1]", level: V5,
		raw: pkt(0xf0, hx("18"), props(prop(PropAuthMethod, str("SCRAM-SHA-1")), prop(PropAuthData, str("\x01\x02")),
			prop(PropReasonString, str("more")), userProp("k", "v"))),
		pkt: &Auth{ReasonCode: ContinueAuthentication, Properties: Properties{
			Present:    set(PropAuthMethod, PropAuthData, PropReasonString),
			AuthMethod: "SCRAM-SHA-1", AuthData: []byte{1, 2}, ReasonString: "more", User: []UserProperty{{"k", "v"}}}}},
	{name: "AUTH 5.0 re-authenticate, empty properties", level: V5, raw: hx("f0 02 19 00"),
		pkt: &Auth{ReasonCode: ReAuthenticate}},
	{name: "AUTH 5.0 reason code without property length (decode only)", level: V5, raw: hx("f0 01 18"),
		pkt: &Auth{ReasonCode: ContinueAuthentication}, enc: hx("f0 02 18 00")},
}

func TestDecodeValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			versions := []byte{tc.level}
			if tc.pkt.Type() == CONNECT {
				versions = append(versions, 0) // CONNECT names its own level
			}
			for _, ver := range versions {
				for _, reuse := range []bool{false, true} {
					d := &Decoder{Version: ver, Reuse: reuse}
					// A following packet must not be read into this one.
					in := cat(tc.raw, hx("c0 00"))
					p, n, err := d.Decode(in)
					if err != nil || p == nil {
						t.Fatalf("Version %d Reuse %v: Decode = %v, %d, %v", ver, reuse, p, n, err)
					}
					if n != len(tc.raw) {
						t.Errorf("Version %d Reuse %v: used %d bytes, want %d", ver, reuse, n, len(tc.raw))
					}
					if !deepEqual(p, tc.pkt) {
						t.Errorf("Version %d Reuse %v:\n got %s\nwant %s", ver, reuse, show(p), show(tc.pkt))
					}
					if d.Version != tc.level {
						t.Errorf("Version %d: decoder level after Decode is %d, want %d", ver, d.Version, tc.level)
					}
				}
			}

			want := tc.raw
			if tc.enc != nil {
				want = tc.enc
			}
			prefix := []byte{0xaa, 0xbb}
			got, err := tc.pkt.Append(prefix, tc.level)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], want) {
				t.Errorf("Append:\n got % x\nwant % x", got[2:], want)
			}
			if s := tc.pkt.Size(tc.level); s != len(want) {
				t.Errorf("Size = %d, want %d", s, len(want))
			}
			if e, err := Encode(nil, tc.pkt, tc.level); err != nil || !bytes.Equal(e, want) {
				t.Errorf("Encode = % x, %v", e, err)
			}
			if tc.enc != nil { // the canonical form decodes to the same packet
				p, _, err := (&Decoder{Version: tc.level}).Decode(tc.enc)
				if err != nil || !deepEqual(p, tc.pkt) {
					t.Errorf("decode of the canonical form: %s, %v", show(p), err)
				}
			}
		})
	}
}

// propsOf returns the property blocks of a packet.
func propsOf(p Packet) []*Properties {
	switch p := p.(type) {
	case *Connect:
		return []*Properties{&p.Properties, &p.Will.Properties}
	case *Connack:
		return []*Properties{&p.Properties}
	case *Publish:
		return []*Properties{&p.Properties}
	case *Puback:
		return []*Properties{&p.Properties}
	case *Pubrec:
		return []*Properties{&p.Properties}
	case *Pubrel:
		return []*Properties{&p.Properties}
	case *Pubcomp:
		return []*Properties{&p.Properties}
	case *Subscribe:
		return []*Properties{&p.Properties}
	case *Suback:
		return []*Properties{&p.Properties}
	case *Unsubscribe:
		return []*Properties{&p.Properties}
	case *Unsuback:
		return []*Properties{&p.Properties}
	case *Disconnect:
		return []*Properties{&p.Properties}
	case *Auth:
		return []*Properties{&p.Properties}
	}
	return nil
}

// TestValidCasesCoverEveryProperty checks the table above: every property
// identifier appears in a row, and every packet type at every level where it
// exists.
func TestValidCasesCoverEveryProperty(t *testing.T) {
	seen := map[PropID]bool{}
	types := map[[2]byte]bool{}
	for _, tc := range validCases {
		types[[2]byte{byte(tc.pkt.Type()), tc.level}] = true
		for _, p := range propsOf(tc.pkt) {
			for id := PropID(0); id < 64; id++ {
				if p.Has(id) {
					seen[id] = true
				}
			}
			if len(p.User) > 0 {
				seen[PropUser] = true
			}
			if len(p.SubscriptionIDs) > 0 {
				seen[PropSubscriptionID] = true
			}
		}
	}
	for id, info := range propTable {
		if info.allowed != 0 && !seen[PropID(id)] {
			t.Errorf("property 0x%02x is in no valid row", id)
		}
	}
	for ty := CONNECT; ty <= AUTH; ty++ {
		for _, level := range []byte{V31, V311, V5} {
			if ty == AUTH && level != V5 {
				continue
			}
			if !types[[2]byte{byte(ty), level}] {
				t.Errorf("%v at level %d is in no valid row", ty, level)
			}
		}
	}
}
