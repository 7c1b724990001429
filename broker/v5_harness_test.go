package broker_test

// Helpers for the MQTT 5.0 end-to-end tests (v5_*_test.go): thin wrappers
// around internal/gannettest; every name here starts with v5 so that the
// two suites cannot collide.

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// v5Connect returns a 5.0 CONNECT for id with Clean Start 1 and no Session
// Expiry Interval (0: the session ends with the connection).
func v5Connect(id string) *packet.Connect { return gannettest.Connect5(id) }

// v5Persistent returns a 5.0 CONNECT for id with the given Clean Start and
// Session Expiry Interval.
func v5Persistent(id string, clean bool, expiry uint32) *packet.Connect {
	return gannettest.Persistent5(id, clean, expiry)
}

// v5Dial opens a raw connection that speaks 5.0; nothing is sent yet.
func v5Dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	return wrapRaw(gannettest.Dial(t, addr, packet.V5))
}

// v5ConnectRaw dials addr, sends the 5.0 CONNECT p and returns the client
// and the CONNACK, whatever its reason code.
func v5ConnectRaw(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := v5Dial(t, addr)
	return c, c.Connect(p)
}

// v5ConnectOK is v5ConnectRaw that fails unless the CONNACK is 0x00.
func v5ConnectOK(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	c := v5Dial(t, addr)
	return c, c.ConnectOK(p)
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
	return c.Subscribe(subID, subs...)
}

// v5Sub subscribes to one filter with options and an optional
// Subscription Identifier, and fails unless the requested QoS is granted.
func (c *rawClient) v5Sub(subID uint32, sub packet.Subscription) { c.t.Helper(); c.Sub(subID, sub) }

// v5Publish sends p and completes its flow; it returns the reason code of
// the PUBACK or PUBREC (Success for QoS 0). A PUBREC of 0x80 or above ends
// the flow there [MQTT-4.4.0-2].
func (c *rawClient) v5Publish(p *packet.Publish) packet.ReasonCode { c.t.Helper(); return c.Publish(p) }

// v5Pub publishes a message without properties and completes its flow.
func (c *rawClient) v5Pub(topic, payload string, qos byte, retain bool) packet.ReasonCode {
	c.t.Helper()
	return c.Pub(topic, payload, qos, retain)
}

// v5ExpectDisconnect expects the broker to send DISCONNECT with reason rc
// as the next and last packet, then close the connection [MQTT-3.14.4-2]
// [MQTT-3.14.2-2].
func (c *rawClient) v5ExpectDisconnect(rc packet.ReasonCode) *packet.Disconnect {
	c.t.Helper()
	return c.ExpectDisconnect(rc)
}

// v5ExpectConnackRefused expects a CONNACK with failure code rc, Session
// Present 0 [MQTT-3.2.2-6], and then the close [MQTT-3.2.2-7].
func v5ExpectConnackRefused(t testing.TB, addr string, p *packet.Connect, rc packet.ReasonCode) {
	t.Helper()
	v5Dial(t, addr).ConnectRefused(p, rc)
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
func v5UserProps(kv ...string) []packet.UserProperty { return gannettest.UserProps(kv...) }

// v5ID returns a client identifier unique within the test process.
func v5ID(prefix string) string { return gannettest.ID(prefix) }

// v5PahoClient is a paho.golang 5.0 client whose received messages and
// server DISCONNECTs arrive on channels.
type v5PahoClient struct{ *gannettest.Paho5Client }

// v5Paho connects a paho.golang client to addr with cp; configure may
// adjust the client configuration first. The client is disconnected when
// the test ends. It fails the test unless the CONNACK accepts it.
func v5Paho(t testing.TB, addr string, cp *paho.Connect, configure func(*paho.ClientConfig)) (*v5PahoClient, *paho.Connack) {
	t.Helper()
	pc, ack := gannettest.Paho5(t, addr, cp, configure)
	return &v5PahoClient{pc}, ack
}

// v5PahoConnect is a paho CONNECT for id with Clean Start 1.
func v5PahoConnect(id string) *paho.Connect { return gannettest.Paho5Connect(id) }

func (pc *v5PahoClient) next(t testing.TB) *paho.Publish        { t.Helper(); return pc.Next(t) }
func (pc *v5PahoClient) none(t testing.TB, d time.Duration)     { t.Helper(); pc.None(t, d) }
func (pc *v5PahoClient) sub(t testing.TB, s *paho.Subscribe)    { t.Helper(); pc.Sub(t, s) }
func (pc *v5PahoClient) pub(t testing.TB, p *paho.Publish) byte { t.Helper(); return pc.Pub(t, p) }

// v5Tool returns the path of mosquitto_pub or mosquitto_sub: missing, the
// test is skipped, or fails when the CI environment variable is set.
func v5Tool(t *testing.T, name string) string {
	t.Helper()
	return gannettest.Tool(t, name, "apt-get install mosquitto-clients")
}

// v5HostPort splits a test broker address for the mosquitto tools.
func v5HostPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	return gannettest.HostPort(t, addr)
}

// v5Command is a running external client; its output is collected.
type v5Command struct{ *gannettest.Command }

// v5Start starts name (mosquitto_pub or mosquitto_sub) with args and
// stdin (may be empty); it is killed after limit at the latest, or when the
// test ends.
func v5Start(t *testing.T, name, stdin string, limit time.Duration, args ...string) *v5Command {
	t.Helper()
	return &v5Command{gannettest.StartTool(t, v5Tool(t, name), stdin, limit, args...)}
}

func (c *v5Command) result() (string, error)  { return c.Result() }
func (c *v5Command) wait(t *testing.T) string { t.Helper(); return c.Wait(t) }
func (c *v5Command) kill()                    { c.Kill() }

// v5Run runs name with args to completion within limit and returns its
// output.
func v5Run(t *testing.T, name, stdin string, limit time.Duration, args ...string) string {
	t.Helper()
	return v5Start(t, name, stdin, limit, args...).wait(t)
}
