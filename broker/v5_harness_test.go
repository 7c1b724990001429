package broker_test

// Helpers for the MQTT 5.0 end-to-end tests (v5_*_test.go). They build on
// the raw client and broker harness of harness_test.go; every name here
// starts with v5 so that the two suites cannot collide.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/packet"
)

// v5Connect returns a 5.0 CONNECT for id with Clean Start 1 and no Session
// Expiry Interval (0: the session ends with the connection).
func v5Connect(id string) *packet.Connect {
	return &packet.Connect{Version: packet.V5, ClientID: id, CleanStart: true, KeepAlive: 60}
}

// v5Persistent returns a 5.0 CONNECT for id with the given Clean Start and
// Session Expiry Interval.
func v5Persistent(id string, clean bool, expiry uint32) *packet.Connect {
	p := v5Connect(id)
	p.CleanStart = clean
	p.Properties.SetUint(packet.PropSessionExpiry, expiry)
	return p
}

// v5Dial opens a raw connection that speaks 5.0; nothing is sent yet.
func v5Dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	c.ver, c.dec.Version = packet.V5, packet.V5
	return c
}

// v5ConnectRaw dials addr, sends the 5.0 CONNECT p and returns the client
// and the CONNACK, whatever its reason code.
func v5ConnectRaw(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := v5Dial(t, addr)
	c.send(p)
	return c, expectPacket[*packet.Connack](c)
}

// v5ConnectOK is v5ConnectRaw that fails unless the CONNACK is 0x00.
func v5ConnectOK(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c, ack := v5ConnectRaw(t, addr, p)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK for %q: %s (%#x)", p.ClientID, ack.ReasonCode, byte(ack.ReasonCode))
	}
	return c, ack
}

// v5Client connects a raw 5.0 client called id with Clean Start 1 and
// Session Expiry Interval 0.
func v5Client(t testing.TB, b *testBroker, id string) *rawClient {
	t.Helper()
	c, _ := v5ConnectOK(t, b.Addr, v5Connect(id))
	return c
}

// v5Subscribe sends one SUBSCRIBE with an optional Subscription Identifier
// (0: none) and returns the SUBACK's reason codes.
func (c *rawClient) v5Subscribe(subID uint32, subs ...packet.Subscription) []packet.ReasonCode {
	c.t.Helper()
	p := &packet.Subscribe{PacketID: c.id(), Subscriptions: subs}
	if subID != 0 {
		p.Properties.SubscriptionIDs = []uint32{subID}
	}
	c.send(p)
	ack := expectPacket[*packet.Suback](c)
	if ack.PacketID != p.PacketID {
		c.t.Fatalf("SUBACK id %d, want %d", ack.PacketID, p.PacketID)
	}
	if len(ack.ReasonCodes) != len(subs) {
		c.t.Fatalf("SUBACK has %d codes for %d filters", len(ack.ReasonCodes), len(subs))
	}
	return ack.ReasonCodes
}

// v5Sub subscribes to one filter with options and an optional
// Subscription Identifier, and fails unless the requested QoS is granted.
func (c *rawClient) v5Sub(subID uint32, sub packet.Subscription) {
	c.t.Helper()
	if rc := c.v5Subscribe(subID, sub)[0]; rc != packet.ReasonCode(sub.QoS) {
		c.t.Fatalf("SUBSCRIBE %q QoS %d: SUBACK %s (%#x)", sub.Filter, sub.QoS, rc, byte(rc))
	}
}

// v5Publish sends p (giving a QoS 1 or 2 PUBLISH a packet identifier when
// it has none) and completes its flow; it returns the reason code of the
// PUBACK or PUBREC (Success for QoS 0). A PUBREC of 0x80 or above ends the
// flow there [MQTT-4.4.0-2].
func (c *rawClient) v5Publish(p *packet.Publish) packet.ReasonCode {
	c.t.Helper()
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.id()
	}
	c.send(p)
	switch p.QoS {
	case 1:
		ack := expectPacket[*packet.Puback](c)
		if ack.PacketID != p.PacketID {
			c.t.Fatalf("PUBACK id %d, want %d", ack.PacketID, p.PacketID)
		}
		return ack.ReasonCode
	case 2:
		rec := expectPacket[*packet.Pubrec](c)
		if rec.PacketID != p.PacketID {
			c.t.Fatalf("PUBREC id %d, want %d", rec.PacketID, p.PacketID)
		}
		if rec.ReasonCode.IsError() {
			return rec.ReasonCode
		}
		c.send(&packet.Pubrel{PacketID: p.PacketID})
		comp := expectPacket[*packet.Pubcomp](c)
		if comp.PacketID != p.PacketID || comp.ReasonCode != packet.Success {
			c.t.Fatalf("PUBCOMP id %d code %s, want id %d, success", comp.PacketID, comp.ReasonCode, p.PacketID)
		}
		return rec.ReasonCode
	}
	return packet.Success
}

// v5Pub publishes a message without properties and completes its flow.
func (c *rawClient) v5Pub(topic, payload string, qos byte, retain bool) packet.ReasonCode {
	c.t.Helper()
	return c.v5Publish(&packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
}

// v5ExpectDisconnect expects the broker to send DISCONNECT with reason rc
// as the next and last packet, then close the connection [MQTT-3.14.4-2].
// No DISCONNECT from the server carries a Session Expiry Interval
// [MQTT-3.14.2-2].
func (c *rawClient) v5ExpectDisconnect(rc packet.ReasonCode) *packet.Disconnect {
	c.t.Helper()
	got := c.expectClosed(waitFor)
	if len(got) == 0 {
		c.t.Fatalf("connection closed without DISCONNECT, want DISCONNECT %s (%#x)", rc, byte(rc))
	}
	if len(got) > 1 {
		c.t.Fatalf("received %d packets before the connection closed (first %s %s), want only DISCONNECT %#x",
			len(got), got[0].Type(), describe(got[0]), byte(rc))
	}
	d, ok := got[0].(*packet.Disconnect)
	if !ok {
		c.t.Fatalf("got %s %s before the close, want DISCONNECT %#x", got[0].Type(), describe(got[0]), byte(rc))
	}
	if d.ReasonCode != rc {
		c.t.Fatalf("DISCONNECT %s (%#x), want %s (%#x)", d.ReasonCode, byte(d.ReasonCode), rc, byte(rc))
	}
	if d.Properties.Has(packet.PropSessionExpiry) {
		c.t.Errorf("server DISCONNECT carries Session Expiry Interval %d [MQTT-3.14.2-2]", d.Properties.SessionExpiry)
	}
	return d
}

// v5ExpectConnackRefused expects a CONNACK with failure code rc, Session
// Present 0 [MQTT-3.2.2-6], and then the close [MQTT-3.2.2-7].
func v5ExpectConnackRefused(t testing.TB, addr string, p *packet.Connect, rc packet.ReasonCode) {
	t.Helper()
	c, ack := v5ConnectRaw(t, addr, p)
	if ack.ReasonCode != rc {
		t.Fatalf("CONNACK %s (%#x), want %s (%#x)", ack.ReasonCode, byte(ack.ReasonCode), rc, byte(rc))
	}
	if ack.SessionPresent {
		t.Errorf("refusing CONNACK has Session Present 1 [MQTT-3.2.2-6]")
	}
	c.expectClosedSilently(waitFor)
}

// v5ExpectNothing checks with a ping that nothing is pending for c.
func (c *rawClient) v5ExpectNothing() { c.t.Helper(); c.sync() }

// v5Quiet waits d and then checks that nothing arrived meanwhile: for
// things that must not happen after a delay (expiry, will delay), where no
// ping can prove their absence.
func (c *rawClient) v5Quiet(d time.Duration) {
	c.t.Helper()
	time.Sleep(d)
	c.sync()
}

// v5UserProps builds User Properties from key, value pairs.
func v5UserProps(kv ...string) []packet.UserProperty {
	var u []packet.UserProperty
	for i := 0; i+1 < len(kv); i += 2 {
		u = append(u, packet.UserProperty{Key: kv[i], Value: kv[i+1]})
	}
	return u
}

// v5Seq numbers client identifiers within one process.
var v5Seq atomic.Int64

// v5ID returns a client identifier unique within the test process.
func v5ID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, v5Seq.Add(1)) }

// v5PahoClient is a github.com/eclipse/paho.golang 5.0 client whose
// received messages and server DISCONNECTs arrive on channels.
type v5PahoClient struct {
	*paho.Client
	Msgs        chan *paho.Publish
	Disconnects chan *paho.Disconnect
	overflow    atomic.Int64
}

// v5Paho connects a paho.golang client to addr with cp; configure may
// adjust the client configuration first. The client is disconnected when
// the test ends. It fails the test unless the CONNACK accepts it.
func v5Paho(t testing.TB, addr string, cp *paho.Connect, configure func(*paho.ClientConfig)) (*v5PahoClient, *paho.Connack) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	pc := &v5PahoClient{Msgs: make(chan *paho.Publish, 4096), Disconnects: make(chan *paho.Disconnect, 1)}
	cfg := paho.ClientConfig{
		Conn:          nc,
		PacketTimeout: waitFor,
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
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
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
		case <-time.After(waitFor):
			t.Errorf("paho client %q did not shut down", cp.ClientID)
		}
		if n := pc.overflow.Load(); n > 0 {
			t.Errorf("paho client %q: %d messages overflowed the test channel", cp.ClientID, n)
		}
	})
	return pc, ack
}

// v5PahoConnect is a paho CONNECT for id with Clean Start 1.
func v5PahoConnect(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

// next returns the next message the paho client received, within waitFor.
func (pc *v5PahoClient) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-pc.Msgs:
		return m
	case <-time.After(waitFor):
		t.Fatalf("paho: no message within %v", waitFor)
		return nil
	}
}

// none checks that no message arrives within d.
func (pc *v5PahoClient) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-pc.Msgs:
		t.Fatalf("paho: unexpected message on %q: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// sub subscribes the paho client and fails unless every filter is granted
// the QoS it asked for.
func (pc *v5PahoClient) sub(t testing.TB, s *paho.Subscribe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
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

// pub publishes with the paho client and returns the PUBACK/PUBREC reason
// code (0 for QoS 0).
func (pc *v5PahoClient) pub(t testing.TB, p *paho.Publish) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := pc.Publish(ctx, p)
	if err != nil {
		t.Fatalf("paho publish %q: %v", p.Topic, err)
	}
	return r.ReasonCode
}

// v5Tool returns the path of mosquitto_pub or mosquitto_sub, through the
// 3.1.1 suite's mosquittoClients: missing, the test is skipped, or fails
// when the CI environment variable is set.
func v5Tool(t *testing.T, name string) string {
	t.Helper()
	pub, sub := mosquittoClients(t)
	if name == "mosquitto_pub" {
		return pub
	}
	return sub
}

// v5HostPort splits a test broker address for the mosquitto tools.
func v5HostPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	return host, port
}

// v5Command is a running external client; its output is collected.
type v5Command struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // exit status, set before done is closed
}

// v5Start starts name (mosquitto_pub or mosquitto_sub) with args and
// stdin (may be empty); it is killed after limit at the latest, or when the
// test ends.
func v5Start(t *testing.T, name, stdin string, limit time.Duration, args ...string) *v5Command {
	t.Helper()
	path := v5Tool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	c := &v5Command{cmd: exec.CommandContext(ctx, path, args...), done: make(chan struct{})}
	c.cmd.Stdout = &c.out
	c.cmd.Stderr = &c.out
	if stdin != "" {
		c.cmd.Stdin = strings.NewReader(stdin)
	}
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		cancel()
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// result waits for the command to exit and returns its output and exit
// status.
func (c *v5Command) result() (string, error) {
	<-c.done
	return c.out.String(), c.err
}

// wait waits for the command to exit successfully and returns its output.
func (c *v5Command) wait(t *testing.T) string {
	t.Helper()
	out, err := c.result()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.cmd.Args, " "), err, out)
	}
	return out
}

// kill ends the command abruptly (SIGKILL): its connection drops without
// DISCONNECT.
func (c *v5Command) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// v5Run runs name with args to completion within limit and returns its
// output.
func v5Run(t *testing.T, name, stdin string, limit time.Duration, args ...string) string {
	t.Helper()
	return v5Start(t, name, stdin, limit, args...).wait(t)
}
