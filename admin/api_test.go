package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/packet"
)

func TestNewRefuses(t *testing.T) {
	if _, err := admin.New(nil, admin.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	b := runBroker(t, nil)
	if _, err := admin.New(b.Server, admin.Options{Token: "two words"}); err == nil {
		t.Error("New with a token holding a space succeeded")
	}
}

func TestHealth(t *testing.T) {
	b := runBroker(t, nil)
	var notReady error
	s := runAdmin(t, b.Server, admin.Options{Token: "secret", Ready: func() error { return notReady }})
	for _, path := range []string{"/healthz", "/readyz"} {
		r := s.requestAuth("GET", path, nil, "")
		if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != "ok" {
			t.Errorf("GET %s without token: %d %q, want 200 ok", path, r.Status, r.Body)
		}
	}
	notReady = errors.New("listeners closed")
	r := s.requestAuth("GET", "/readyz", nil, "")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "listeners closed") {
		t.Errorf("GET /readyz when not ready: %d %q, want 503 with the reason", r.Status, r.Body)
	}
}

func TestToken(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "s3cret-token"})
	protected := []string{"/api/v1/stats", "/api/v1/clients", "/api/v1/clients/x", "/api/v1/subscriptions",
		"/api/v1/topics", "/api/v1/retained", "/api/v1/nope", "/metrics"}
	for _, path := range protected {
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-tokenX", "Basic czNjcmV0LXRva2Vu", "Bearer", "s3cret-token"} {
			r := s.requestAuth("GET", path, nil, auth)
			expect(t, r, http.StatusUnauthorized, "GET "+path+" with Authorization "+auth)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: WWW-Authenticate %q", path, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// Mutations are refused before they act.
	c := connect(t, b.Addr, "victim")
	expect(t, s.requestAuth("DELETE", "/api/v1/clients/victim", nil, "Bearer nope"), http.StatusUnauthorized, "DELETE without token")
	expect(t, s.requestAuth("POST", "/api/v1/publish", map[string]any{"topic": "a"}, ""), http.StatusUnauthorized, "POST without token")
	c.ping()

	for _, auth := range []string{"Bearer s3cret-token", "bearer s3cret-token", "BEARER  s3cret-token"} {
		r := s.requestAuth("GET", "/api/v1/stats", nil, auth)
		expect(t, r, http.StatusOK, "GET /api/v1/stats with "+auth)
	}
	r := s.request("GET", "/metrics", nil)
	expect(t, r, http.StatusOK, "GET /metrics with the token")

	// The dashboard's files hold no data: open, and the page knows that
	// the API wants a token.
	r = s.requestAuth("GET", "/", nil, "")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `name="gannet-auth" content="token"`) {
		t.Errorf("GET / without token: %d, auth meta missing", r.Status)
	}
	for _, path := range []string{"/assets/app.js", "/assets/style.css", "/assets/favicon.svg"} {
		if r := s.requestAuth("GET", path, nil, ""); r.Status != http.StatusOK || len(r.Body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, r.Status, len(r.Body))
		}
	}
}

func TestNoToken(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	for _, path := range []string{"/api/v1/stats", "/api/v1/clients", "/api/v1/subscriptions", "/api/v1/topics", "/api/v1/retained", "/metrics"} {
		if r := s.requestAuth("GET", path, nil, ""); r.Status != http.StatusOK {
			t.Errorf("GET %s without token: %d %s", path, r.Status, r.Body)
		}
	}
	r := s.request("GET", "/", nil)
	if !strings.Contains(string(r.Body), `name="gannet-auth" content="none"`) {
		t.Errorf("dashboard page does not say that no token is needed")
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("dashboard Content-Security-Policy %q", csp)
	}
}

func TestStats(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	sub := connect(t, b.Addr, "sub")
	sub.subscribe("s/#", 1)
	pub := connect(t, b.Addr, "pub")
	for range 3 {
		pub.publish("s/x", "hello", 1, false)
	}
	pub.publish("s/r", "kept", 0, true)
	for range 4 {
		sub.receive()
	}
	sub.ping()

	var st admin.StatsJSON
	r := s.request("GET", "/api/v1/stats", nil)
	expect(t, r, http.StatusOK, "GET stats")
	r.JSON(t, &st)
	if st.Connections != 2 || st.Accepted != 2 || st.Sessions != 2 || st.Subscriptions != 1 || st.Retained != 1 {
		t.Errorf("stats %+v: want 2 connections, 2 accepted, 2 sessions, 1 subscription, 1 retained", st)
	}
	if st.Received != 4 || st.ReceivedByQoS != [3]uint64{1, 3, 0} || st.Sent != 4 || st.SentByQoS != [3]uint64{1, 3, 0} {
		t.Errorf("stats %+v: want 4 received and sent, by QoS 1, 3, 0", st)
	}
	if st.UptimeSeconds <= 0 || time.Since(st.Time) > time.Minute || st.BytesReceived == 0 || st.BytesSent == 0 {
		t.Errorf("stats %+v: uptime, time or bytes missing", st)
	}
}

func TestClients(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	alpha := dialMQTT(t, b.Addr, &packet.Connect{CleanStart: true, ClientID: "sensor-alpha", UsernameFlag: true, Username: "alice"})
	alpha.subscribe("home/+/temp", 1)
	alpha.subscribe("home/alarm", 0)
	beta := connect(t, b.Addr, "sensor-beta")
	beta.ping()
	gamma := connect(t, b.Addr, "gateway")
	gamma.ping()
	slash := connect(t, b.Addr, "room/1")
	slash.ping()

	list := func(query string) admin.ClientList {
		t.Helper()
		r := s.request("GET", "/api/v1/clients"+query, nil)
		expect(t, r, http.StatusOK, "GET clients"+query)
		var l admin.ClientList
		r.JSON(t, &l)
		return l
	}
	ids := func(l admin.ClientList) string {
		var out []string
		for _, c := range l.Clients {
			out = append(out, c.ClientID)
		}
		return strings.Join(out, ",")
	}
	// A client identifier may hold a slash, escaped or not.
	for _, path := range []string{"/api/v1/clients/room%2F1", "/api/v1/clients/room/1"} {
		r := s.request("GET", path, nil)
		expect(t, r, http.StatusOK, "GET "+path)
		var d admin.ClientDetail
		if r.JSON(t, &d); d.Client.ClientID != "room/1" {
			t.Errorf("GET %s: client %q", path, d.Client.ClientID)
		}
	}
	expect(t, s.request("DELETE", "/api/v1/clients/room%2F1", nil), http.StatusOK, "DELETE room/1")
	slash.waitClosed()
	eventually(t, "room/1 gone", func() bool { _, _, ok := b.Client("room/1"); return !ok })

	if l := list(""); ids(l) != "gateway,sensor-alpha,sensor-beta" || l.Total != 3 {
		t.Errorf("clients: %s (total %d)", ids(l), l.Total)
	}
	if l := list("?q=SENSOR"); ids(l) != "sensor-alpha,sensor-beta" || l.Total != 2 {
		t.Errorf("clients?q=SENSOR: %s (total %d)", ids(l), l.Total)
	}
	if l := list("?q=alic"); ids(l) != "sensor-alpha" {
		t.Errorf("clients?q=alic (username): %s", ids(l))
	}
	if l := list("?q=127.0.0.1"); l.Total != 3 {
		t.Errorf("clients?q=127.0.0.1 (address): %s", ids(l))
	}
	if l := list("?q=nobody"); len(l.Clients) != 0 || l.Total != 0 {
		t.Errorf("clients?q=nobody: %s", ids(l))
	}
	if l := list("?limit=1"); len(l.Clients) != 1 || l.Total != 3 {
		t.Errorf("clients?limit=1: %s (total %d)", ids(l), l.Total)
	}
	for _, bad := range []string{"?limit=-1", "?limit=x", "?connected=maybe"} {
		expect(t, s.request("GET", "/api/v1/clients"+bad, nil), http.StatusBadRequest, "GET clients"+bad)
	}

	r := s.request("GET", "/api/v1/clients/sensor-alpha", nil)
	expect(t, r, http.StatusOK, "GET clients/sensor-alpha")
	var d admin.ClientDetail
	r.JSON(t, &d)
	if d.Client.ClientID != "sensor-alpha" || !d.Client.Connected || d.Client.Username != "alice" || d.Client.Subscriptions != 2 {
		t.Errorf("client detail %+v", d.Client)
	}
	if len(d.Subscriptions) != 2 || d.Subscriptions[0].Filter != "home/+/temp" || d.Subscriptions[0].QoS != 1 || d.Subscriptions[1].Filter != "home/alarm" {
		t.Errorf("client subscriptions %+v", d.Subscriptions)
	}
	expect(t, s.request("GET", "/api/v1/clients/nobody", nil), http.StatusNotFound, "GET unknown client")

	// Disconnect: the connection ends, the clean session with it.
	expect(t, s.request("DELETE", "/api/v1/clients/sensor-beta", nil), http.StatusOK, "DELETE clients/sensor-beta")
	beta.waitClosed()
	eventually(t, "sensor-beta gone", func() bool { _, _, ok := b.Client("sensor-beta"); return !ok })
	expect(t, s.request("DELETE", "/api/v1/clients/nobody", nil), http.StatusNotFound, "DELETE unknown client")
	expect(t, s.request("DELETE", "/api/v1/clients/gateway?discard=perhaps", nil), http.StatusBadRequest, "DELETE with a bad discard")
	if l := list("?connected=true"); ids(l) != "gateway,sensor-alpha" {
		t.Errorf("clients?connected=true after the disconnect: %s", ids(l))
	}
}

func TestDisconnectDiscard(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	keep := dialMQTT(t, b.Addr, &packet.Connect{CleanStart: false, ClientID: "keeper", KeepAlive: 60})
	keep.subscribe("k/#", 1)

	// A plain disconnect keeps the persistent session.
	expect(t, s.request("DELETE", "/api/v1/clients/keeper", nil), http.StatusOK, "disconnect keeper")
	keep.waitClosed()
	eventually(t, "keeper offline", func() bool { ci, _, ok := b.Client("keeper"); return ok && !ci.Connected })
	var d admin.ClientDetail
	r := s.request("GET", "/api/v1/clients/keeper", nil)
	expect(t, r, http.StatusOK, "GET offline client")
	r.JSON(t, &d)
	if d.Client.Connected || !d.Client.Persistent || len(d.Subscriptions) != 1 {
		t.Errorf("offline persistent session: %+v %+v", d.Client, d.Subscriptions)
	}

	// discard=true ends it.
	expect(t, s.request("DELETE", "/api/v1/clients/keeper?discard=true", nil), http.StatusOK, "discard keeper")
	eventually(t, "keeper's session to end", func() bool { _, _, ok := b.Client("keeper"); return !ok })
	expect(t, s.request("GET", "/api/v1/clients/keeper", nil), http.StatusNotFound, "GET discarded client")
}

func TestSubscriptionsAndTopics(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	for i, id := range []string{"a", "b", "c"} {
		c := connect(t, b.Addr, id)
		c.subscribe("news/#", 0)
		if i > 0 {
			c.subscribe("weather", 1)
		}
		if i == 2 {
			c.subscribe("alerts", 2)
		}
	}
	var subs admin.SubscriptionList
	r := s.request("GET", "/api/v1/subscriptions", nil)
	expect(t, r, http.StatusOK, "GET subscriptions")
	r.JSON(t, &subs)
	if subs.Total != 6 || len(subs.Subscriptions) != 6 {
		t.Errorf("subscriptions: %+v", subs)
	}

	b.Publish("weather", []byte("sunny"), 0, true)
	var topics admin.TopicList
	r = s.request("GET", "/api/v1/topics?limit=2", nil)
	expect(t, r, http.StatusOK, "GET topics")
	r.JSON(t, &topics)
	want := []admin.TopicInfo{
		{Filter: "news/#", Subscribers: 3, MaxQoS: 0},
		{Filter: "weather", Subscribers: 2, MaxQoS: 1, Retained: true},
	}
	if topics.Total != 3 || topics.RankedBy != "subscribers" || len(topics.Topics) != 2 || topics.Topics[0] != want[0] || topics.Topics[1] != want[1] {
		t.Errorf("topics: %+v, want %+v of 3", topics, want)
	}
}

func TestRetained(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	b.Publish("dev/1/state", []byte("on"), 1, true)
	b.Publish("dev/2/state", []byte{0xff, 0x00}, 0, true)
	b.Publish("/leading/slash", []byte("x"), 0, true)
	b.Publish("other", []byte("y"), 0, true)

	get := func(query string) admin.RetainedList {
		t.Helper()
		r := s.request("GET", "/api/v1/retained"+query, nil)
		expect(t, r, http.StatusOK, "GET retained"+query)
		var l admin.RetainedList
		r.JSON(t, &l)
		return l
	}
	if l := get(""); l.Total != 4 {
		t.Errorf("retained (all): %+v", l)
	}
	l := get("?filter=" + "dev%2F%2B%2Fstate")
	if l.Total != 2 || l.Retained[0].Topic != "dev/1/state" || l.Retained[1].Topic != "dev/2/state" {
		t.Fatalf("retained dev/+/state: %+v", l)
	}
	if m := l.Retained[0]; m.Payload == nil || *m.Payload != "on" || m.PayloadBase64 != "b24=" || m.QoS != 1 || m.Created.IsZero() {
		t.Errorf("text retained message: %+v", m)
	}
	if m := l.Retained[1]; m.Payload != nil || m.PayloadBase64 != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) {
		t.Errorf("binary retained message: %+v", m)
	}
	expect(t, s.request("GET", "/api/v1/retained?filter=a/%23/b", nil), http.StatusBadRequest, "GET retained with a bad filter")

	expect(t, s.request("DELETE", "/api/v1/retained/dev/1/state", nil), http.StatusOK, "DELETE retained/dev/1/state")
	expect(t, s.request("DELETE", "/api/v1/retained/dev/1/state", nil), http.StatusNotFound, "DELETE retained twice")
	expect(t, s.request("DELETE", "/api/v1/retained?topic=%2Fleading%2Fslash", nil), http.StatusOK, "DELETE retained?topic=/leading/slash")
	expect(t, s.request("DELETE", "/api/v1/retained/oth%2Bx", nil), http.StatusBadRequest, "DELETE retained with a wildcard")
	expect(t, s.request("DELETE", "/api/v1/retained", nil), http.StatusBadRequest, "DELETE retained without a topic")
	if l := get(""); l.Total != 2 || l.Retained[0].Topic != "dev/2/state" || l.Retained[1].Topic != "other" {
		t.Errorf("retained after deletes: %+v", l)
	}
}

func TestPublish(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	sub := connect(t, b.Addr, "listener")
	sub.subscribe("cmd/#", 1)

	r := s.request("POST", "/api/v1/publish", map[string]any{"topic": "cmd/light", "payload": "on", "qos": 1})
	expect(t, r, http.StatusOK, "publish text")
	if p := sub.receive(); p.Topic != "cmd/light" || string(p.Payload) != "on" || p.QoS != 1 || p.Retain {
		t.Errorf("received %+v", p)
	}
	r = s.request("POST", "/api/v1/publish", map[string]any{"topic": "cmd/bin", "payload_base64": "AP8=", "retain": true})
	expect(t, r, http.StatusOK, "publish base64")
	if p := sub.receive(); p.Topic != "cmd/bin" || string(p.Payload) != "\x00\xff" || p.QoS != 0 {
		t.Errorf("received %+v", p)
	}
	if m, _ := b.Retained("cmd/bin"); len(m) != 1 {
		t.Errorf("retained after publish with retain: %+v", m)
	}

	bad := []struct {
		body any
		want int
	}{
		{map[string]any{"payload": "x"}, http.StatusBadRequest},                                         // no topic
		{map[string]any{"topic": "a/+", "payload": "x"}, http.StatusBadRequest},                         // wildcard
		{map[string]any{"topic": "a", "qos": 3}, http.StatusBadRequest},                                 // QoS
		{map[string]any{"topic": "a", "payload": "x", "payload_base64": "eA=="}, http.StatusBadRequest}, // both
		{map[string]any{"topic": "a", "payload_base64": "!!"}, http.StatusBadRequest},                   // bad base64
		{map[string]any{"topic": "a", "colour": "red"}, http.StatusBadRequest},                          // unknown field
		{`{"topic": "a"`, http.StatusBadRequest},                                                        // cut short
		{`{"topic": "a"} {"topic": "b"}`, http.StatusBadRequest},                                        // two values
		{`{"topic": "a", "qos": "1"}`, http.StatusBadRequest},                                           // wrong type
	}
	for _, tc := range bad {
		r := s.request("POST", "/api/v1/publish", tc.body)
		expect(t, r, tc.want, fmt.Sprint("publish ", tc.body))
	}
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/publish", strings.NewReader("topic=a&payload=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer t")
	expect(t, s.do(req), http.StatusUnsupportedMediaType, "publish as a form")

	sub.ping() // nothing else arrived
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/stats", "GET, HEAD"},
		{"PUT", "/api/v1/clients", "GET, DELETE, HEAD"},
		{"POST", "/api/v1/clients/x", "GET, DELETE, HEAD"},
		{"GET", "/api/v1/publish", "POST"},
		{"PATCH", "/api/v1/retained/a/b", "DELETE"},
		{"POST", "/metrics", "GET, HEAD"},
	} {
		r := s.request(tc.method, tc.path, nil)
		expect(t, r, http.StatusMethodNotAllowed, tc.method+" "+tc.path)
		if r.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, r.Header.Get("Allow"), tc.allow)
		}
	}
	for _, path := range []string{"/api/v1/nope", "/api/v2/stats", "/api/"} {
		expect(t, s.request("GET", path, nil), http.StatusNotFound, "GET "+path)
	}
}

func TestServe(t *testing.T) {
	b := runBroker(t, nil)
	a, err := admin.New(b.Server, admin.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, l) }()
	c := &http.Client{Timeout: waitFor}
	resp, err := c.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve did not return after cancel")
	}
	if err := a.ListenAndServe(context.Background(), "127.0.0.1:-1"); err == nil {
		t.Error("ListenAndServe on a bad address succeeded")
	}
}
