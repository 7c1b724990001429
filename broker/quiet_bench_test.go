package broker

import (
	"net"
	"testing"

	"github.com/gannet-mqtt/gannet/packet"
)

// Benchmarks of a broker at rest (issue 14): one message at a time from a
// publisher to a subscriber, each sent once the previous one arrived and
// its flows are done; and connections made one after the other. Profile
// them with -cpuprofile to see what a single message or CONNECT costs.

func benchPingPong(b *testing.B, qos byte) {
	addr := benchAddr(b)
	sub := dialRaw(b, addr)
	sub.subscribe(b, "pp", qos)
	pub := dialRaw(b, addr)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := uint16(i%65535 + 1)
		pub.write(b, &packet.Publish{Topic: "pp", QoS: qos, PacketID: id, Payload: make([]byte, 64)})
		p, ok := sub.read(b).(*packet.Publish)
		if !ok {
			b.Fatal("expected PUBLISH")
		}
		switch qos {
		case 1:
			sub.write(b, &packet.Puback{PacketID: p.PacketID})
			pub.read(b) // PUBACK
		case 2:
			sub.write(b, &packet.Pubrec{PacketID: p.PacketID})
			sub.read(b) // PUBREL
			sub.write(b, &packet.Pubcomp{PacketID: p.PacketID})
			pub.read(b) // PUBREC
			pub.write(b, &packet.Pubrel{PacketID: id})
			pub.read(b) // PUBCOMP
		}
	}
}

func BenchmarkPingPongQoS0(b *testing.B) { benchPingPong(b, 0) }
func BenchmarkPingPongQoS1(b *testing.B) { benchPingPong(b, 1) }
func BenchmarkPingPongQoS2(b *testing.B) { benchPingPong(b, 2) }

// BenchmarkConnect connects and disconnects one client after the other.
func BenchmarkConnect(b *testing.B) {
	addr := benchAddr(b)
	connect, _ := (&packet.Connect{Version: packet.V311, CleanStart: true, KeepAlive: 60, ClientID: "connect-bench"}).Append(nil, packet.V311)
	disconnect, _ := (&packet.Disconnect{}).Append(nil, packet.V311)
	var ack [4]byte
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		nc.Write(connect)
		if _, err := nc.Read(ack[:]); err != nil {
			b.Fatal(err)
		}
		nc.Write(disconnect)
		nc.Close()
	}
}
