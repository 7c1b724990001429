package broker_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// redirectingOwners is refusingOwners whose cluster says whether a refused
// client is better sent to another node (broker.ClusterRedirector).
type redirectingOwners struct {
	refusingOwners
	ref      string
	redirect bool
}

func (r redirectingOwners) RefusalReference() (string, bool) { return r.ref, r.redirect }

// A clustered node that cannot claim a session refuses the CONNECT with
// 0x88 and no Server Reference when its cluster says no other node would
// do better (it reaches the majority); with 0x9C naming the node its
// cluster gives when it would (the minority side of a partition). 5.0
// section 4.11; [MQTT-3.2.2-6] Session Present 0 on a refusal.
func TestClusterRedirectorDecidesRefusal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ref      string
		redirect bool
		want     packet.ReasonCode
		wantRef  string
	}{
		{"majority", "", false, packet.ServerUnavailable, ""},
		{"minority", "n3:1883", true, packet.UseAnotherServer, "n3:1883"},
		{"minority, no live node", "", true, packet.UseAnotherServer, "static:1883"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := &opsCluster{fakeCluster: &fakeCluster{}, refs: []string{"n2:1883"}}
			o := testOptions()
			o.ServerReference = "static:1883"
			o.Cluster = redirectingOwners{refusingOwners{oc}, tc.ref, tc.redirect}
			b := runBroker(t, o)
			c := v5Dial(t, b.Addr)
			c.send(v5Connect("redirect-" + tc.name))
			ack := expectPacket[*packet.Connack](c)
			if ack.ReasonCode != tc.want || ack.Properties.ServerReference != tc.wantRef || ack.SessionPresent {
				t.Fatalf("CONNACK %#x, Server Reference %q, session present %v; want %#x, %q, 0",
					byte(ack.ReasonCode), ack.Properties.ServerReference, ack.SessionPresent, byte(tc.want), tc.wantRef)
			}
		})
	}
}
