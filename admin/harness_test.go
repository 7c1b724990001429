package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// waitFor bounds every wait of these tests.
const waitFor = 5 * time.Second

func testLogger() *slog.Logger { return gannettest.Logger() }

// testBroker is a broker serving on a loopback port.
type testBroker struct {
	*broker.Server
	Addr string
}

// runBroker starts a broker on 127.0.0.1:0, closed when the test ends.
// mod, when not nil, changes the options first.
func runBroker(t testing.TB, mod func(*broker.Options)) *testBroker {
	t.Helper()
	opts := gannettest.Options() // no $SYS traffic in the counters
	if mod != nil {
		mod(&opts)
	}
	b := gannettest.RunBroker(t, opts)
	return &testBroker{Server: b.Server, Addr: b.Addr}
}

// adminServer is an Admin served by httptest, with a client that sends the
// token.
type adminServer struct {
	t     testing.TB
	URL   string
	Admin *admin.Admin
	token string
	// timeout bounds each request; 0: waitFor.
	timeout time.Duration
}

func runAdmin(t testing.TB, srv *broker.Server, opts admin.Options) *adminServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	a, err := admin.New(srv, opts)
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	return &adminServer{t: t, URL: hs.URL, Admin: a, token: opts.Token}
}

// response is an HTTP answer read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r *response) JSON(t testing.TB, v any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// request sends a request with the admin's token (if any) and reads the
// answer.
func (s *adminServer) request(method, path string, body any) *response {
	s.t.Helper()
	return s.requestAuth(method, path, body, bearer(s.token))
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// requestAuth sends a request with the given Authorization header ("" for
// none). A string body is sent as it is, anything else as JSON.
func (s *adminServer) requestAuth(method, path string, body any, authorization string) *response {
	s.t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		contentType = "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(j)
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatalf("request %s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return s.do(req)
}

// requestTimeout is request with its own deadline, for a request whose
// cost is the test machine's CPU (a body of many MB under -race).
func (s *adminServer) requestTimeout(method, path string, body any, timeout time.Duration) *response {
	s.t.Helper()
	old := s.timeout
	s.timeout = timeout
	defer func() { s.timeout = old }()
	return s.request(method, path, body)
}

func (s *adminServer) do(req *http.Request) *response {
	s.t.Helper()
	timeout := waitFor
	if s.timeout > 0 {
		timeout = s.timeout
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// expect checks the status of an answer; error answers must be JSON with a
// message.
func expect(t testing.TB, r *response, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
	if status >= 400 {
		var e struct{ Error string }
		r.JSON(t, &e)
		if e.Error == "" {
			t.Fatalf("%s: error answer without a message: %s", what, r.Body)
		}
	}
}

// mqttClient is a raw MQTT 3.1.1 client over TCP (a gannettest.Conn). It
// counts the bytes it writes after CONNECT and every byte it reads, to
// check the broker's byte counters.
type mqttClient struct {
	*gannettest.Conn
	t       testing.TB
	nc      net.Conn
	connect int // bytes of the CONNECT packet
}

// written is the number of bytes written after CONNECT.
func (m *mqttClient) written() int { return m.BytesWritten - m.connect }

// read is the number of bytes read, CONNACK included.
func (m *mqttClient) read() int { return m.BytesRead }

// dialMQTT connects as client id and waits for CONNACK. The connection is
// closed when the test ends.
func dialMQTT(t testing.TB, addr string, c *packet.Connect) *mqttClient {
	t.Helper()
	conn := gannettest.Dial(t, addr, packet.V311)
	conn.Timeout = waitFor
	m := &mqttClient{Conn: conn, t: t, nc: conn.NC}
	if c.Version == 0 {
		c.Version = packet.V311
	}
	b, err := c.Append(nil, c.Version)
	if err != nil {
		t.Fatalf("encode CONNECT: %v", err)
	}
	if err := conn.Write(b); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	m.connect = len(b)
	ack, ok := m.next().(*packet.Connack)
	if !ok || ack.ReasonCode != 0 {
		t.Fatalf("client %q: CONNACK %+v", c.ClientID, ack)
	}
	return m
}

// connect is dialMQTT for a clean 3.1.1 session.
func connect(t testing.TB, addr, id string) *mqttClient {
	t.Helper()
	return dialMQTT(t, addr, gannettest.Connect311(id))
}

func (m *mqttClient) send(p packet.Packet) { m.t.Helper(); m.Send(p) }

// next returns the next packet; an error is fatal.
func (m *mqttClient) next() packet.Packet { m.t.Helper(); return m.Expect() }

// subscribe subscribes to filter and waits for SUBACK; any granted QoS will do.
func (m *mqttClient) subscribe(filter string, qos byte) {
	m.t.Helper()
	if rc := m.Subscribe(0, packet.Subscription{Filter: filter, QoS: qos}); byte(rc[0]) > 2 {
		m.t.Fatalf("SUBACK for %q: %#x", filter, byte(rc[0]))
	}
}

// publish publishes and waits for the exchange to end: PUBACK at QoS 1,
// PUBREC then PUBCOMP at QoS 2, so that the broker has the message when it
// returns.
func (m *mqttClient) publish(topic, payload string, qos byte, retain bool) {
	m.t.Helper()
	m.Pub(topic, payload, qos, retain)
}

// receive reads one PUBLISH and acknowledges it at QoS 1.
func (m *mqttClient) receive() *packet.Publish {
	m.t.Helper()
	p := gannettest.ExpectPacket[*packet.Publish](m.Conn)
	if p.QoS == 1 {
		m.Ack(p)
	}
	return p
}

// receiveTopic reads messages until one on topic arrives, for at most
// waitFor.
func (m *mqttClient) receiveTopic(topic string) *packet.Publish {
	m.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if p := m.receive(); p.Topic == topic {
			return p
		}
	}
	m.t.Fatalf("no message on %q within %v", topic, waitFor)
	return nil
}

// ping sends PINGREQ and waits for PINGRESP: the broker has then handled
// everything sent before.
func (m *mqttClient) ping() { m.t.Helper(); m.Sync() }

// waitClosed waits until the broker closes the connection, whatever it
// sends before (a DISCONNECT or a late message).
func (m *mqttClient) waitClosed() { m.t.Helper(); m.ExpectClosed(waitFor) }

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	gannettest.EventuallyWithin(t, waitFor, what, cond)
}
