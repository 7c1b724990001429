package bridge_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/packet"
)

// fakeRemote is a scripted 5.0 remote broker for a bridge: it answers
// CONNECT with its own CONNACK, SUBSCRIBE, UNSUBSCRIBE and PINGREQ as a
// broker would, and records every PUBLISH without acknowledging it until
// the test says so, to show how many messages the bridge keeps in flight.
type fakeRemote struct {
	t    testing.TB
	l    net.Listener
	ack  *packet.Connack
	pubs chan *packet.Publish

	mu sync.Mutex
	nc net.Conn // the bridge's connection
}

func newFakeRemote(t testing.TB, ack *packet.Connack) *fakeRemote {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRemote{t: t, l: l, ack: ack, pubs: make(chan *packet.Publish, 10_000)}
	go r.serve()
	t.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		if r.nc != nil {
			r.nc.Close()
		}
		r.mu.Unlock()
	})
	return r
}

func (r *fakeRemote) addr() string { return r.l.Addr().String() }

// serve takes one connection at a time and plays the broker on it.
func (r *fakeRemote) serve() {
	for {
		nc, err := r.l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.nc = nc
		r.mu.Unlock()
		r.conn(nc)
		nc.Close()
	}
}

func (r *fakeRemote) conn(nc net.Conn) {
	dec := packet.Decoder{}
	var buf []byte
	var tmp [4096]byte
	for {
		n, err := nc.Read(tmp[:])
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			p, used, err := dec.Decode(buf)
			if err != nil {
				return
			}
			if p == nil {
				break
			}
			buf = buf[:copy(buf, buf[used:])]
			var out packet.Packet
			switch p := p.(type) {
			case *packet.Connect:
				dec.Version = p.Version
				out = r.ack
			case *packet.Subscribe:
				codes := make([]packet.ReasonCode, len(p.Subscriptions))
				out = &packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}
			case *packet.Unsubscribe:
				codes := make([]packet.ReasonCode, len(p.Filters))
				out = &packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}
			case *packet.Pingreq:
				out = &packet.Pingresp{}
			case *packet.Publish:
				r.pubs <- p
			}
			if out != nil {
				r.write(out)
			}
		}
	}
}

// write sends p to the bridge.
func (r *fakeRemote) write(ps ...packet.Packet) {
	var b []byte
	for _, p := range ps {
		b, _ = p.Append(b, packet.V5)
	}
	r.mu.Lock()
	nc := r.nc
	r.mu.Unlock()
	nc.SetWriteDeadline(time.Now().Add(waitFor))
	nc.Write(b)
}

// next returns the next PUBLISH, failing the test after waitFor.
func (r *fakeRemote) next() *packet.Publish {
	r.t.Helper()
	select {
	case p := <-r.pubs:
		return p
	case <-time.After(waitFor):
		r.t.Fatalf("the remote got no further PUBLISH within %v", waitFor)
		return nil
	}
}

// none checks that no PUBLISH arrives for a while.
func (r *fakeRemote) none() {
	r.t.Helper()
	select {
	case p := <-r.pubs:
		r.t.Fatalf("the remote got PUBLISH %q (id %d) beyond its Receive Maximum", p.Payload, p.PacketID)
	case <-time.After(quiet):
	}
}

// TestBridgePipelinesUpToRemoteReceiveMaximum: with a remote whose Receive
// Maximum is 300, the bridge keeps 300 QoS 1 messages in flight at once,
// more than the local broker's max_inflight (64) lets an ordinary client
// have, and not one more [MQTT-4.9.0-2]. None is acknowledged locally
// before the remote acknowledged it: they all stay in the bridge's local
// session. Once the remote acknowledges them, the rest follow, in order.
func TestBridgePipelinesUpToRemoteReceiveMaximum(t *testing.T) {
	const rm, total = 300, 400
	ack := &packet.Connack{}
	ack.Properties.SetUint(packet.PropReceiveMaximum, rm)
	remote := newFakeRemote(t, ack)
	local := startGannet(t, false)
	cfg := testBridge("pipe", packet.V5, []bridge.Rule{{Pattern: "p/#", Direction: bridge.Out, QoS: 1}}, remote.addr())
	cfg.Notifications = false
	m := local.bridges(cfg)
	waitState(t, m, "pipe", bridge.StateConnected)

	p := connectPaho(t, local.Addr, "producer", true, nil)
	var last mqtt.Token
	for i := range total {
		last = p.Publish("p/x", 1, false, fmt.Sprint(i))
	}
	if !last.WaitTimeout(waitFor) || last.Error() != nil {
		t.Fatalf("publish: %v", last.Error())
	}
	ids := make([]uint16, 0, total)
	for i := range rm {
		got := remote.next()
		if string(got.Payload) != fmt.Sprint(i) || got.QoS != 1 {
			t.Fatalf("PUBLISH %d on the remote: payload %q QoS %d, want %d in order at QoS 1", i, got.Payload, got.QoS, i)
		}
		ids = append(ids, got.PacketID)
	}
	remote.none()
	if q := bridgeInfo(m, "pipe").Queued; q != total {
		t.Fatalf("the local session holds %d messages, want all %d while the remote acknowledged none", q, total)
	}
	// Acknowledge the first 50: 50 more may go, no more.
	for _, id := range ids[:50] {
		remote.write(&packet.Puback{PacketID: id})
	}
	for i := rm; i < rm+50; i++ {
		got := remote.next()
		if string(got.Payload) != fmt.Sprint(i) {
			t.Fatalf("PUBLISH %d on the remote: payload %q, want %d", i, got.Payload, i)
		}
		ids = append(ids, got.PacketID)
	}
	remote.none()
	eventually(t, "the 50 acknowledged messages leave the local session", func() bool {
		return bridgeInfo(m, "pipe").Queued == total-50
	})
	for _, id := range ids[50:] {
		remote.write(&packet.Puback{PacketID: id})
	}
	for i := rm + 50; i < total; i++ {
		got := remote.next()
		if string(got.Payload) != fmt.Sprint(i) {
			t.Fatalf("PUBLISH %d on the remote: payload %q, want %d", i, got.Payload, i)
		}
		remote.write(&packet.Puback{PacketID: got.PacketID})
	}
	eventually(t, "every message acknowledged locally", func() bool {
		in := bridgeInfo(m, "pipe")
		return in.Queued == 0 && in.Sent == total
	})
}
