package packet

import "testing"

// The encoder writes exactly the fixed-header flags the flag table gives:
// 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0000 for every other packet
// but PUBLISH (3.1.1 [MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1]). The broker sends
// every packet through this encoder.
func TestEncodeReservedFlags(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		for _, tc := range []struct {
			p     Packet
			flags byte
		}{
			{&Connect{Version: v, ClientID: "c", CleanStart: true}, 0},
			{&Connack{}, 0},
			{&Puback{PacketID: 1}, 0},
			{&Pubrec{PacketID: 1}, 0},
			{&Pubrel{PacketID: 1}, 2},
			{&Pubcomp{PacketID: 1}, 0},
			{&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 2}}}, 2},
			{&Suback{PacketID: 1, ReasonCodes: []ReasonCode{2}}, 0},
			{&Unsubscribe{PacketID: 1, Filters: []string{"a"}}, 2},
			{&Unsuback{PacketID: 1, ReasonCodes: []ReasonCode{0}}, 0},
			{&Pingreq{}, 0},
			{&Pingresp{}, 0},
			{&Disconnect{}, 0},
		} {
			b := encodeOrFail(t, tc.p, v)
			if got := b[0] & 0x0f; got != tc.flags {
				t.Errorf("level %d %v: flags %04b, want %04b (3.1.1 [MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1])", v, tc.p.Type(), got, tc.flags)
			}
		}
	}
	if b := encodeOrFail(t, &Auth{ReasonCode: ContinueAuthentication}, V5); b[0]&0x0f != 0 {
		t.Errorf("AUTH flags %04b, want 0000 [MQTT-3.15.1-1]", b[0]&0x0f)
	}
}
