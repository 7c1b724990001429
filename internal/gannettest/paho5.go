package gannettest

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Paho5Client is a github.com/eclipse/paho.golang 5.0 client whose received
// messages and server DISCONNECTs arrive on channels.
type Paho5Client struct {
	*paho.Client
	Msgs        chan *paho.Publish
	Disconnects chan *paho.Disconnect
	overflow    atomic.Int64
}

// Paho5Depth is how many received messages a Paho5Client holds; one more
// fails the test when it ends.
const Paho5Depth = 10000

// Paho5 connects a paho.golang client to addr with cp; configure, when not
// nil, adjusts the client configuration first. It fails the test unless the
// CONNACK accepts it. When the test ends the client sends DISCONNECT and
// must shut down within WaitFor.
func Paho5(t testing.TB, addr string, cp *paho.Connect, configure func(*paho.ClientConfig)) (*Paho5Client, *paho.Connack) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, WaitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	pc := &Paho5Client{Msgs: make(chan *paho.Publish, Paho5Depth), Disconnects: make(chan *paho.Disconnect, 1)}
	cfg := paho.ClientConfig{
		Conn:          nc,
		PacketTimeout: WaitFor,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(r paho.PublishReceived) (bool, error) {
				select {
				case pc.Msgs <- r.Packet:
				default:
					pc.overflow.Add(1)
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case pc.Disconnects <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	}
	if configure != nil {
		configure(&cfg)
	}
	pc.Client = paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
	defer cancel()
	ack, err := pc.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		t.Fatalf("paho connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(func() {
		pc.Client.Disconnect(&paho.Disconnect{ReasonCode: 0})
		select {
		case <-pc.Done():
		case <-time.After(WaitFor):
			t.Errorf("paho client %q did not shut down", cp.ClientID)
		}
		if n := pc.overflow.Load(); n > 0 {
			t.Errorf("paho client %q: %d messages overflowed the test channel", cp.ClientID, n)
		}
	})
	return pc, ack
}

// Paho5Connect is a paho CONNECT for id with Clean Start 1.
func Paho5Connect(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

// Next returns the next message the client received, within WaitFor.
func (pc *Paho5Client) Next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-pc.Msgs:
		return m
	case <-time.After(WaitFor):
		t.Fatalf("paho: no message within %v", WaitFor)
		return nil
	}
}

// None checks that no message arrives within d.
func (pc *Paho5Client) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-pc.Msgs:
		t.Fatalf("paho: unexpected message on %q: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// Sub subscribes the client and fails unless every filter is granted the
// QoS it asked for.
func (pc *Paho5Client) Sub(t testing.TB, s *paho.Subscribe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
	defer cancel()
	ack, err := pc.Subscribe(ctx, s)
	if err != nil {
		t.Fatalf("paho subscribe: %v", err)
	}
	for i, rc := range ack.Reasons {
		if rc != s.Subscriptions[i].QoS {
			t.Fatalf("paho subscribe %q: SUBACK %#x, want %#x", s.Subscriptions[i].Topic, rc, s.Subscriptions[i].QoS)
		}
	}
}

// Pub publishes and returns the PUBACK/PUBREC reason code (0 for QoS 0).
func (pc *Paho5Client) Pub(t testing.TB, p *paho.Publish) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
	defer cancel()
	r, err := pc.Publish(ctx, p)
	if err != nil {
		t.Fatalf("paho publish %q: %v", p.Topic, err)
	}
	return r.ReasonCode
}
