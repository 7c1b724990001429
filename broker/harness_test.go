package broker_test

// The end-to-end harness of the broker's tests: thin wrappers, under the
// names these tests have always called, around the shared harness in
// internal/gannettest.

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// Timeouts used throughout the end-to-end tests. Every network wait has one
// of them as its deadline, so no test can hang.
const (
	// waitFor bounds a wait for something that must happen.
	waitFor = 3 * time.Second
	// quiet is how long a test listens to be fairly sure something does
	// not happen, where no ping barrier can prove it.
	quiet = 200 * time.Millisecond
)

// testBroker is a running server and its address.
type testBroker struct {
	*broker.Server
	Addr string
}

// testOptions returns DefaultOptions with a logger that stays quiet unless
// GANNET_TEST_LOG is set, and no $SYS messages.
func testOptions() broker.Options { return gannettest.Options() }

func testLogger() *slog.Logger { return gannettest.Logger() }

// runBroker starts a server with opts on a 127.0.0.1:0 listener and closes
// it when the test ends.
func runBroker(t testing.TB, opts broker.Options) *testBroker {
	t.Helper()
	return runBrokerOn(t, opts, listen(t))
}

// listen returns a listener on a free loopback port.
func listen(t testing.TB) net.Listener { t.Helper(); return gannettest.Listen(t) }

// runBrokerOn is runBroker on a listener the test provides.
func runBrokerOn(t testing.TB, opts broker.Options, l net.Listener) *testBroker {
	t.Helper()
	b := gannettest.RunBrokerOn(t, opts, l)
	return &testBroker{Server: b.Server, Addr: b.Addr}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	gannettest.EventuallyWithin(t, waitFor, what, cond)
}

// waitOffline waits until the session of client id has no connection (the
// broker has finished with the old one, will included).
func (b *testBroker) waitOffline(t testing.TB, id string) {
	t.Helper()
	eventually(t, "session "+id+" to go offline", func() bool {
		_, online := b.SessionState(id)
		return !online
	})
}

// waitSubscriptions waits until the broker holds n subscriptions.
func (b *testBroker) waitSubscriptions(t testing.TB, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d subscriptions", n), func() bool { return b.Stats().Subscriptions == n })
}

// rawClient is a gannettest.Conn under the lower-case method names of
// these tests; t and nc are the Conn's, for the tests that use them.
type rawClient struct {
	*gannettest.Conn
	t  testing.TB
	nc net.Conn
}

// newRawClient wraps nc, speaking version.
func newRawClient(t testing.TB, nc net.Conn, version byte) *rawClient {
	return wrapRaw(gannettest.NewConn(t, nc, version))
}

func wrapRaw(c *gannettest.Conn) *rawClient {
	c.Timeout = waitFor
	return &rawClient{Conn: c, t: c.T, nc: c.NC}
}

// dialRaw opens a 3.1.1 TCP connection to addr; it is closed when the
// test ends.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return wrapRaw(gannettest.Dial(t, addr, packet.V311))
}

func (c *rawClient) write(b []byte) error                        { return c.Write(b) }
func (c *rawClient) encode(ps ...packet.Packet) []byte           { c.t.Helper(); return c.Encode(ps...) }
func (c *rawClient) send(ps ...packet.Packet)                    { c.t.Helper(); c.Send(ps...) }
func (c *rawClient) read(d time.Duration) (packet.Packet, error) { return c.Read(d) }
func (c *rawClient) expect() packet.Packet                       { c.t.Helper(); return c.Expect() }
func (c *rawClient) expectClosed(d time.Duration) []packet.Packet {
	c.t.Helper()
	return c.ExpectClosed(d)
}
func (c *rawClient) expectClosedSilently(d time.Duration) { c.t.Helper(); c.ExpectClosedSilently(d) }
func (c *rawClient) sync()                                { c.t.Helper(); c.Sync() }
func (c *rawClient) id() uint16                           { return c.NextID() }
func (c *rawClient) ack(p *packet.Publish)                { c.t.Helper(); c.Ack(p) }
func (c *rawClient) expectPublish(topic, payload string) *packet.Publish {
	c.t.Helper()
	return c.ExpectPublish(topic, payload)
}

// subscribe subscribes to filter=qos pairs and returns the SUBACK codes.
func (c *rawClient) subscribe(subs ...packet.Subscription) []packet.ReasonCode {
	c.t.Helper()
	return c.Subscribe(0, subs...)
}

// sub subscribes to one filter and fails unless the QoS is granted.
func (c *rawClient) sub(filter string, qos byte) {
	c.t.Helper()
	c.Sub(0, packet.Subscription{Filter: filter, QoS: qos})
}

// publish sends a PUBLISH and completes its flow. The client must not be
// receiving messages meanwhile.
func (c *rawClient) publish(topic, payload string, qos byte, retain bool) {
	c.t.Helper()
	c.Pub(topic, payload, qos, retain)
}

// expectPacket reads the next packet and fails unless it is a T.
func expectPacket[T packet.Packet](c *rawClient) T {
	c.t.Helper()
	return gannettest.ExpectPacket[T](c.Conn)
}

// describe renders a packet for failure messages.
func describe(p packet.Packet) string { return gannettest.Describe(p) }

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool { return gannettest.IsClosed(err) }

// connectPacket returns a 3.1.1 CONNECT for id with clean session 1.
func connectPacket(id string) *packet.Connect { return gannettest.Connect311(id) }

// connectRaw dials addr, sends p and returns the client (at 3.1 for a 3.1
// CONNECT, 5.0 for a 5.0 one, 3.1.1 otherwise) and the CONNACK.
func connectRaw(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c, ack := gannettest.ConnectRaw(t, addr, p)
	return wrapRaw(c), ack
}

// connectOK connects with p and fails unless the CONNACK accepts it.
func connectOK(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c, ack := gannettest.ConnectOK(t, addr, p)
	return wrapRaw(c), ack
}

// client connects a clean-session 3.1.1 client called id.
func client(t testing.TB, b *testBroker, id string) *rawClient {
	t.Helper()
	c, _ := connectOK(t, b.Addr, connectPacket(id))
	return c
}

// expectServing checks that the broker still accepts a client and
// answers it: the follow-up to every hostile input.
func expectServing(t testing.TB, b *testBroker) {
	t.Helper()
	gannettest.ExpectServing(t, b.Addr)
}

// pahoClient connects a paho.mqtt.golang client (3.1 with version 3, 3.1.1
// with 4) and disconnects it when the test ends.
func pahoClient(t testing.TB, addr, id string, version uint, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	return gannettest.Paho(t, addr, id, version, configure)
}

// wait waits for a paho token.
func wait(t testing.TB, what string, tok mqtt.Token) { t.Helper(); gannettest.Wait(t, what, tok) }

// pahoMessages subscribes a paho client and returns the channel its
// messages arrive on.
func pahoMessages(t testing.TB, c mqtt.Client, filter string, qos byte, depth int) <-chan mqtt.Message {
	t.Helper()
	return gannettest.Messages(t, c, filter, qos, depth)
}

// nextMessage receives one message from ch within waitFor.
func nextMessage(t testing.TB, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	return gannettest.Next(t, ch)
}

// hx parses hexadecimal bytes written with spaces: hx("30 05 00").
func hx(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		var v byte
		if _, err := fmt.Sscanf(f, "%02x", &v); err != nil {
			panic("hx: " + f)
		}
		b = append(b, v)
	}
	return b
}
