package packet

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestEncodeErrors: the encoder refuses what it cannot put on the wire.
func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("a", 65536)
	for _, tc := range []struct {
		name  string
		p     Packet
		level byte
		err   error
	}{
		{"PUBLISH QoS 3 [MQTT-3.3.1-4]", &Publish{QoS: 3, Topic: "t"}, V311, ErrEncodeQoS},
		{"CONNECT will QoS 3 [MQTT-3.1.2-14]", &Connect{Version: V311, WillFlag: true, Will: Will{Topic: "t", QoS: 3}}, V311, ErrEncodeQoS},
		{"SUBSCRIBE QoS 3 [MQTT-3.8.3-4]", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "t", QoS: 3}}}, V311, ErrEncodeQoS},
		{"PUBLISH topic of 65536 bytes [MQTT-4.7.3-3]", &Publish{Topic: long}, V311, ErrStringTooLong},
		{"SUBSCRIBE filter of 65536 bytes [MQTT-4.7.3-3]", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: long}}}, V5, ErrStringTooLong},
		{"UNSUBSCRIBE filter of 65536 bytes [MQTT-4.7.3-3]", &Unsubscribe{PacketID: 1, Filters: []string{long}}, V311, ErrStringTooLong},
		{"CONNECT ClientId of 65536 bytes", &Connect{Version: V311, ClientID: long}, V311, ErrStringTooLong},
		{"CONNECT password of 65536 bytes", &Connect{Version: V5, PasswordFlag: true, Password: []byte(long)}, V5, ErrStringTooLong},
		{"PUBLISH content type of 65536 bytes", &Publish{Topic: "t", Properties: Properties{Present: set(PropContentType), ContentType: long}}, V5, ErrStringTooLong},
		{"PUBLISH correlation data of 65536 bytes", &Publish{Topic: "t", Properties: Properties{Present: set(PropCorrelationData), CorrelationData: []byte(long)}}, V5, ErrStringTooLong},
		{"PUBACK user property of 65536 bytes", &Puback{PacketID: 1, Properties: Properties{User: []UserProperty{{"k", long}}}}, V5, ErrStringTooLong},
		{"AUTH at level 4", &Auth{}, V311, ErrEncodeType},
	} {
		if _, err := tc.p.Append(nil, tc.level); !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, err := appendHeader(nil, 0x30, MaxRemainingLength+1); !errors.Is(err, ErrRemainingTooLong) {
		t.Errorf("appendHeader: err = %v, want ErrRemainingTooLong", err)
	}
}

// TestTopicMaxLength: a Topic Name of 65535 bytes, the most a UTF-8 Encoded
// String holds, goes through [MQTT-4.7.3-3].
func TestTopicMaxLength(t *testing.T) {
	p := &Publish{QoS: 1, PacketID: 1, Topic: strings.Repeat("é", 65535/2) + "a", Payload: []byte("x")}
	for _, level := range []byte{V311, V5} {
		enc := encodeOrFail(t, p, level)
		q, _, err := (&Decoder{Version: level}).Decode(enc)
		if err != nil || !deepEqual(q, p) {
			t.Errorf("level %d: %v", level, err)
		}
	}
}

// TestEncodeAtLevel: fields a level cannot carry are left out, and 5.0 codes
// map to the earlier levels' return codes.
func TestEncodeAtLevel(t *testing.T) {
	rich := Properties{Present: set(PropReasonString), ReasonString: "r", User: []UserProperty{{"k", "v"}}}
	for _, tc := range []struct {
		name  string
		p     Packet
		level byte
		want  []byte
	}{
		{"CONNACK 0x8A banned as 5", &Connack{ReasonCode: Banned}, V311, hx("20 02 00 05")},
		{"CONNACK 0x8C bad authentication method as 4", &Connack{ReasonCode: BadAuthenticationMethod}, V311, hx("20 02 00 04")},
		{"CONNACK 0x89 server busy as 3", &Connack{ReasonCode: ServerBusy}, V311, hx("20 02 00 03")},
		{"CONNACK 3.1.1 without properties", &Connack{SessionPresent: true, Properties: rich}, V311, hx("20 02 01 00")},
		{"CONNACK 3.1 has no session present", &Connack{SessionPresent: true}, V31, hx("20 02 00 00")},
		{"PUBLISH QoS 0 has no packet id [MQTT-2.3.1-5] [MQTT-2.2.1-2]", &Publish{Topic: "a", PacketID: 7}, V311, hx("30 03 00 01 61")},
		{"PUBLISH QoS 0 has no DUP [MQTT-3.3.1-2]", &Publish{Dup: true, Topic: "a"}, V5, hx("30 04 00 01 61 00")},
		{"PUBLISH 3.1.1 without properties", &Publish{Topic: "a", Properties: rich}, V311, hx("30 03 00 01 61")},
		{"PUBACK 3.1.1 without reason code and properties", &Puback{PacketID: 1, ReasonCode: QuotaExceeded, Properties: rich}, V311, hx("40 02 00 01")},
		{"PUBREL 3.1 without reason code", &Pubrel{PacketID: 1, ReasonCode: PacketIdentifierNotFound}, V31, hx("62 02 00 01")},
		{"SUBSCRIBE 3.1.1 options carry only the QoS [MQTT-3.8.3-4]",
			&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
			V311, pkt(0x82, hx("00 01"), str("a"), hx("02"))},
		{"SUBACK 3.1.1 failures sent as 0x80 [MQTT-3.9.3-2]",
			&Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS1, NotAuthorized, QuotaExceeded}}, V311, hx("90 05 00 01 01 80 80")},
		{"UNSUBACK 3.1.1 has no reason codes", &Unsuback{PacketID: 1, ReasonCodes: []ReasonCode{NoSubscriptionExisted}, Properties: rich}, V311, hx("b0 02 00 01")},
		{"DISCONNECT 3.1.1 has no body", &Disconnect{ReasonCode: DisconnectWithWill, Properties: rich}, V311, hx("e0 00")},
		{"CONNECT encodes at its own level, whatever the argument",
			&Connect{Version: V311, CleanStart: true, ClientID: "c", Properties: rich}, V5, pkt(0x10, str("MQTT"), hx("04 02 00 00"), str("c"))},
		{"CONNECT 3.1 defaults to MQIsdp", &Connect{Version: V31, ClientID: "c"}, V31, pkt(0x10, str("MQIsdp"), hx("03 00 00 00"), str("c"))},
	} {
		got, err := tc.p.Append(nil, tc.level)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s:\n got % x, %v\nwant % x", tc.name, got, err, tc.want)
		}
		if s := tc.p.Size(tc.level); s != len(tc.want) {
			t.Errorf("%s: Size = %d, want %d", tc.name, s, len(tc.want))
		}
	}
}

// TestSizeLetsSenderDropOptionalProperties: a sender keeps a packet within
// the receiver's Maximum Packet Size by leaving out the Reason String, then
// the User Properties; Size tells it exactly what each costs, before
// encoding. [MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.4.2-2] [MQTT-3.4.2-3]
// [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.6.2-2] [MQTT-3.6.2-3] [MQTT-3.7.2-2]
// [MQTT-3.7.2-3] [MQTT-3.9.2-1] [MQTT-3.9.2-2] [MQTT-3.11.2-1] [MQTT-3.11.2-2]
// [MQTT-3.14.2-3] [MQTT-3.14.2-4] [MQTT-3.15.2-2] [MQTT-3.15.2-3]
func TestSizeLetsSenderDropOptionalProperties(t *testing.T) {
	const max = 64
	reason := strings.Repeat("r", 40)
	mk := func() []Packet {
		pr := Properties{Present: set(PropReasonString), ReasonString: reason,
			User: []UserProperty{{"key", strings.Repeat("v", 30)}}}
		return []Packet{
			&Connack{ReasonCode: NotAuthorized, Properties: pr},
			&Puback{PacketID: 1, ReasonCode: NotAuthorized, Properties: pr},
			&Pubrec{PacketID: 1, ReasonCode: NotAuthorized, Properties: pr},
			&Pubrel{PacketID: 1, ReasonCode: PacketIdentifierNotFound, Properties: pr},
			&Pubcomp{PacketID: 1, ReasonCode: PacketIdentifierNotFound, Properties: pr},
			&Suback{PacketID: 1, ReasonCodes: []ReasonCode{NotAuthorized}, Properties: pr},
			&Unsuback{PacketID: 1, ReasonCodes: []ReasonCode{NotAuthorized}, Properties: pr},
			&Disconnect{ReasonCode: AdministrativeAction, Properties: pr},
			&Auth{ReasonCode: ContinueAuthentication, Properties: pr},
		}
	}
	for _, p := range mk() {
		pr := propsOf(p)[0]
		full := p.Size(V5)
		if full <= max {
			t.Fatalf("%v: %d bytes, the test needs more than %d", p.Type(), full, max)
		}
		pr.Present.Remove(PropReasonString)
		pr.ReasonString = ""
		noReason := p.Size(V5)
		// The property costs its identifier, its length and its bytes; the
		// Remaining Length may shrink by a byte too.
		if d := full - noReason; d != 3+len(reason) && d != 4+len(reason) {
			t.Errorf("%v: leaving out the Reason String saves %d bytes", p.Type(), d)
		}
		pr.User = nil
		bare := p.Size(V5)
		if bare > max {
			t.Errorf("%v: %d bytes without optional properties", p.Type(), bare)
		}
		if enc := encodeOrFail(t, p, V5); len(enc) != bare {
			t.Errorf("%v: encoded %d bytes, Size said %d", p.Type(), len(enc), bare)
		}
	}
}

// TestValidateExported checks the exported validators used by other packages.
func TestValidateExported(t *testing.T) {
	for _, tc := range []struct {
		s           string
		name, filt  error
		shareName   string
		shareFilter string
		shared      bool
	}{
		{s: "a/b", name: nil, filt: nil},
		{s: "", name: ErrTopicEmpty, filt: ErrFilterInvalid},                            // [MQTT-4.7.3-1]
		{s: "a/+", name: ErrTopicWildcard, filt: nil},                                   // [MQTT-4.7.1-1]
		{s: "#", name: ErrTopicWildcard, filt: nil},                                     // [MQTT-4.7.1-2]
		{s: "a/#/b", name: ErrTopicWildcard, filt: ErrFilterInvalid},                    // [MQTT-4.7.1-2]
		{s: "a+", name: ErrTopicWildcard, filt: ErrFilterInvalid},                       // [MQTT-4.7.1-3]
		{s: "#a", name: ErrTopicWildcard, filt: ErrFilterInvalid},                       // [MQTT-4.7.1-2]
		{s: "a\x00", name: ErrNullChar, filt: ErrNullChar},                              // [MQTT-4.7.3-2]
		{s: "\xed\xa0\x80", name: ErrInvalidUTF8, filt: ErrInvalidUTF8},                 // [MQTT-1.5.3-1]
		{s: "\ufeff", name: nil, filt: nil},                                             // [MQTT-1.5.3-3]
		{s: strings.Repeat("a", 65536), name: ErrStringTooLong, filt: ErrStringTooLong}, // [MQTT-4.7.3-3]
		{s: "$share/g/a/#", name: ErrTopicWildcard, filt: nil, shareName: "g", shareFilter: "a/#", shared: true},
		{s: "$share//x", name: nil, filt: ErrShareInvalid, shareFilter: "x", shared: true},                                 // [MQTT-4.8.2-1]
		{s: "$share/g", name: nil, filt: ErrShareInvalid, shareName: "g", shared: true},                                    // [MQTT-4.8.2-2]
		{s: "$share/g+/x", name: ErrTopicWildcard, filt: ErrShareInvalid, shareName: "g+", shareFilter: "x", shared: true}, // [MQTT-4.8.2-2]
		{s: "$share", name: nil, filt: nil},
	} {
		if err := ValidTopicName(tc.s); !errors.Is(err, tc.name) {
			t.Errorf("ValidTopicName(%.20q) = %v, want %v", tc.s, err, tc.name)
		}
		if err := ValidTopicFilter(tc.s); !errors.Is(err, tc.filt) {
			t.Errorf("ValidTopicFilter(%.20q) = %v, want %v", tc.s, err, tc.filt)
		}
		if name, inner, ok := ShareGroup(tc.s); ok != tc.shared || name != tc.shareName || inner != tc.shareFilter {
			t.Errorf("ShareGroup(%.20q) = %q, %q, %v", tc.s, name, inner, ok)
		}
	}
}

// TestPublishClone: a clone survives the reuse of the buffer its packet was
// decoded from.
func TestPublishClone(t *testing.T) {
	raw := pkt(0x32, str("a/b"), hx("00 01"), publishPropsRaw, []byte("payload"))
	d := &Decoder{Version: V5, Reuse: true}
	p, _, err := d.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := p.(*Publish).Clone()
	want := clonePacket(p)
	for i := range raw {
		raw[i] = 'X'
	}
	if !deepEqual(c, want) {
		t.Errorf("clone changed with the buffer:\n got %s\nwant %s", show(c), show(want))
	}
	if empty := (&Publish{Topic: "t"}).Clone(); empty.Payload != nil || empty.Topic != "t" {
		t.Errorf("Clone of a nil payload = %s", show(empty))
	}
}

func TestStrings(t *testing.T) {
	if PUBLISH.String() != "PUBLISH" || Type(0).String() != "RESERVED" || Type(16).String() != "type 16" {
		t.Errorf("Type.String: %v %v %v", PUBLISH, Type(0), Type(16))
	}
	if TopicAliasInvalid.String() != "topic alias invalid" || ReasonCode(0x03).String() != "reason code 0x3" {
		t.Errorf("ReasonCode.String: %v %v", TopicAliasInvalid, ReasonCode(0x03))
	}
	if !UnspecifiedError.IsError() || GrantedQoS2.IsError() {
		t.Error("IsError")
	}
	if s := ErrTopicAliasZero.Error(); s != "packet: topic alias 0 is not allowed (topic alias invalid)" {
		t.Errorf("Error() = %q", s)
	}
	if errors.Is(ErrQoS3, ErrMaxQoS3) || errors.Is(ErrShort, ErrTrailing) {
		t.Error("distinct errors match")
	}
}
