package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// waitFor bounds every wait of these tests.
const waitFor = 5 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("GANNET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testBroker is a broker serving on a loopback port.
type testBroker struct {
	*broker.Server
	Addr string
}

// runBroker starts a broker on 127.0.0.1:0, closed when the test ends.
// mod, when not nil, changes the options first.
func runBroker(t testing.TB, mod func(*broker.Options)) *testBroker {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.Logger = testLogger()
	opts.SysInterval = 0 // no $SYS traffic in the counters
	if mod != nil {
		mod(&opts)
	}
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, broker.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Serve did not return after Close")
		}
	})
	return &testBroker{Server: srv, Addr: l.Addr().String()}
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

// mqttClient is a raw MQTT 3.1.1 client over TCP. It counts the bytes it
// writes after CONNECT and every byte it reads, to check the broker's byte
// counters.
type mqttClient struct {
	t       testing.TB
	nc      net.Conn
	dec     packet.Decoder
	buf     []byte
	nextID  uint16
	connect int // bytes of the CONNECT packet
	written int // bytes written after CONNECT
	read    int // bytes read, CONNACK included
}

// dialMQTT connects as client id and waits for CONNACK. The connection is
// closed when the test ends.
func dialMQTT(t testing.TB, addr string, c *packet.Connect) *mqttClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	m := &mqttClient{t: t, nc: nc}
	m.dec.Version = packet.V311
	if c.Version == 0 {
		c.Version = packet.V311
	}
	b, err := c.Append(nil, c.Version)
	if err != nil {
		t.Fatalf("encode CONNECT: %v", err)
	}
	nc.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := nc.Write(b); err != nil {
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
	return dialMQTT(t, addr, &packet.Connect{Version: packet.V311, CleanStart: true, ClientID: id, KeepAlive: 60})
}

func (m *mqttClient) send(p packet.Packet) {
	m.t.Helper()
	b, err := p.Append(nil, packet.V311)
	if err != nil {
		m.t.Fatalf("encode %v: %v", p.Type(), err)
	}
	m.nc.SetWriteDeadline(time.Now().Add(waitFor))
	n, err := m.nc.Write(b)
	m.written += n
	if err != nil {
		m.t.Fatalf("write %v: %v", p.Type(), err)
	}
}

// readPacket returns the next packet, or the error that ended the
// connection.
func (m *mqttClient) readPacket() (packet.Packet, error) {
	deadline := time.Now().Add(waitFor)
	for {
		if len(m.buf) > 0 {
			p, n, err := m.dec.Decode(m.buf)
			if err != nil {
				return nil, fmt.Errorf("decode: %w", err)
			}
			if p != nil {
				m.buf = m.buf[:copy(m.buf, m.buf[n:])]
				return p, nil
			}
		}
		m.nc.SetReadDeadline(deadline)
		if cap(m.buf)-len(m.buf) < 4096 {
			m.buf = append(m.buf, make([]byte, 4096)...)[:len(m.buf)]
		}
		n, err := m.nc.Read(m.buf[len(m.buf):cap(m.buf)])
		m.buf = m.buf[:len(m.buf)+n]
		m.read += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// next returns the next packet; an error is fatal.
func (m *mqttClient) next() packet.Packet {
	m.t.Helper()
	p, err := m.readPacket()
	if err != nil {
		m.t.Fatalf("read: %v", err)
	}
	return p
}

func (m *mqttClient) id() uint16 {
	m.nextID++
	return m.nextID
}

// subscribe subscribes to filter and waits for SUBACK.
func (m *mqttClient) subscribe(filter string, qos byte) {
	m.t.Helper()
	m.send(&packet.Subscribe{PacketID: m.id(), Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	if sa, ok := m.next().(*packet.Suback); !ok || len(sa.ReasonCodes) != 1 || byte(sa.ReasonCodes[0]) > 2 {
		m.t.Fatalf("SUBACK for %q: %+v", filter, sa)
	}
}

// publish publishes and waits for the exchange to end: PUBACK at QoS 1,
// PUBREC then PUBCOMP at QoS 2, so that the broker has the message when it
// returns.
func (m *mqttClient) publish(topic, payload string, qos byte, retain bool) {
	m.t.Helper()
	p := &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	if qos > 0 {
		p.PacketID = m.id()
	}
	m.send(p)
	switch qos {
	case 1:
		if _, ok := m.next().(*packet.Puback); !ok {
			m.t.Fatalf("no PUBACK for %q", topic)
		}
	case 2:
		if _, ok := m.next().(*packet.Pubrec); !ok {
			m.t.Fatalf("no PUBREC for %q", topic)
		}
		m.send(&packet.Pubrel{PacketID: p.PacketID})
		if _, ok := m.next().(*packet.Pubcomp); !ok {
			m.t.Fatalf("no PUBCOMP for %q", topic)
		}
	}
}

// receive reads one PUBLISH and acknowledges it at QoS 1.
func (m *mqttClient) receive() *packet.Publish {
	m.t.Helper()
	p, ok := m.next().(*packet.Publish)
	if !ok {
		m.t.Fatalf("expected PUBLISH, got %T", p)
	}
	if p.QoS == 1 {
		m.send(&packet.Puback{PacketID: p.PacketID})
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
func (m *mqttClient) ping() {
	m.t.Helper()
	m.send(&packet.Pingreq{})
	if _, ok := m.next().(*packet.Pingresp); !ok {
		m.t.Fatalf("expected PINGRESP")
	}
}

// waitClosed waits until the broker closes the connection.
func (m *mqttClient) waitClosed() {
	m.t.Helper()
	for {
		p, err := m.readPacket()
		if err == nil {
			continue // a DISCONNECT or a late message
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
			return
		}
		m.t.Fatalf("connection not closed: %v (last packet %T)", err, p)
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
