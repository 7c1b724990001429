package admin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/admin"
)

func traceClient(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(waitFor).SetWriteTimeout(waitFor).SetKeepAlive(30 * time.Second)
	c := mqtt.NewClient(o)
	tokWait(t, "connect "+id, c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func tokWait(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// traceLines parses JSON lines.
func traceLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"])); err != nil {
			t.Errorf("trace line without a timestamp: %s", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func hasLine(lines []map[string]any, kv ...string) bool {
	for _, l := range lines {
		ok := true
		for i := 0; i < len(kv); i += 2 {
			if fmt.Sprint(l[kv[i]]) != kv[i+1] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// A trace of one client, to a file: every packet it sends and receives
// and its session's events, nothing of another client; stopped through
// the API, it ends with its final line.
func TestTraceClientToFile(t *testing.T) {
	b := runBroker(t, nil)
	dir := t.TempDir()
	s := runAdmin(t, b.Server, admin.Options{TraceDir: dir})

	r := s.request("POST", "/api/v1/traces", admin.TraceRequest{ClientID: "c1", Duration: "30s"})
	expect(t, r, http.StatusCreated, "start trace")
	var info admin.TraceInfo
	r.JSON(t, &info)
	if !info.Active || info.File == "" || !strings.HasPrefix(info.File, dir) || info.MaxBytes != 10<<20 {
		t.Fatalf("trace info: %+v", info)
	}

	c1 := traceClient(t, b.Addr, "c1")
	c2 := traceClient(t, b.Addr, "c2")
	got := make(chan struct{}, 10)
	tokWait(t, "subscribe", c1.Subscribe("a/b", 1, func(mqtt.Client, mqtt.Message) { got <- struct{}{} }))
	tokWait(t, "c2 subscribe", c2.Subscribe("other", 1, nil))
	tokWait(t, "c1 publish", c1.Publish("a/b", 1, false, "from c1"))
	tokWait(t, "c2 publish", c2.Publish("a/b", 1, false, "from c2"))
	for range 2 {
		select {
		case <-got:
		case <-time.After(waitFor):
			t.Fatal("c1 did not get its messages")
		}
	}
	c1.Disconnect(250)

	var list []admin.TraceInfo
	s.request("GET", "/api/v1/traces", nil).JSON(t, &list)
	if len(list) != 1 || list[0].ID != info.ID || !list[0].Active {
		t.Fatalf("list: %+v", list)
	}
	// Wait for the disconnection to be traced, then stop.
	deadline := time.Now().Add(waitFor)
	for {
		var cur admin.TraceInfo
		s.request("GET", "/api/v1/traces/"+info.ID, nil).JSON(t, &cur)
		f, _ := os.ReadFile(info.File)
		if bytes.Contains(f, []byte("client.disconnected")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r = s.request("DELETE", "/api/v1/traces/"+info.ID, nil)
	expect(t, r, http.StatusOK, "stop trace")
	r.JSON(t, &info)
	if info.Active || info.Stopped != "stopped" || info.Events == 0 {
		t.Fatalf("stopped trace: %+v", info)
	}

	r = s.request("GET", "/api/v1/traces/"+info.ID+"/file", nil)
	expect(t, r, http.StatusOK, "trace file")
	lines := traceLines(t, r.Body)
	for _, want := range [][]string{
		{"event", "trace.started"},
		{"event", "client.connected", "client_id", "c1"},
		{"event", "session.created", "client_id", "c1"},
		{"event", "packet.in", "packet", "SUBSCRIBE"},
		{"event", "packet.out", "packet", "SUBACK"},
		{"event", "client.subscribed", "topic", "a/b"},
		{"event", "packet.in", "packet", "PUBLISH", "topic", "a/b"},
		{"event", "packet.out", "packet", "PUBACK"},
		{"event", "message.published", "client_id", "c1", "topic", "a/b"},
		{"event", "message.delivered", "client_id", "c1", "topic", "a/b"},
		{"event", "packet.in", "packet", "PUBACK"},
		{"event", "packet.in", "packet", "DISCONNECT"},
		{"event", "client.disconnected", "client_id", "c1", "reason", "normal"},
		{"event", "trace.stopped", "reason", "stopped"},
	} {
		if !hasLine(lines, want...) {
			t.Errorf("no trace line with %v in:\n%s", want, r.Body)
		}
	}
	for _, l := range lines {
		if id, ok := l["client_id"]; ok && id != "c1" {
			t.Errorf("a line of another client in c1's trace: %v", l)
		}
	}
	if int64(len(r.Body)) != info.Bytes {
		t.Errorf("file has %d bytes, trace says %d", len(r.Body), info.Bytes)
	}
}

// A trace of a topic filter, streamed: the messages on matching topics
// from any client, none of others, until its duration ends.
func TestTraceTopicStream(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	body, _ := json.Marshal(admin.TraceRequest{Topic: "s/#", Duration: "1500ms", Output: "stream"})
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/traces", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	start := time.Now()
	done := make(chan []byte)
	go func() {
		var all bytes.Buffer
		all.ReadFrom(resp.Body)
		done <- all.Bytes()
	}()
	sub := traceClient(t, b.Addr, "sub")
	tokWait(t, "subscribe", sub.Subscribe("#", 1, nil))
	pub := traceClient(t, b.Addr, "pub")
	tokWait(t, "publish s/1", pub.Publish("s/1", 1, false, "yes"))
	tokWait(t, "publish x/1", pub.Publish("x/1", 1, false, "no"))
	tokWait(t, "publish s", pub.Publish("s", 0, false, "parent"))

	var out []byte
	select {
	case out = <-done:
	case <-time.After(waitFor):
		t.Fatal("the stream did not end after its duration")
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("a 1.5s trace ended after %v", d)
	}
	lines := traceLines(t, out)
	for _, want := range [][]string{
		{"event", "message.published", "client_id", "pub", "topic", "s/1", "payload", "eWVz"},
		{"event", "message.delivered", "client_id", "sub", "topic", "s/1"},
		{"event", "message.published", "topic", "s"},
		{"event", "trace.stopped", "reason", "duration"},
	} {
		if !hasLine(lines, want...) {
			t.Errorf("no line with %v in:\n%s", want, out)
		}
	}
	for _, l := range lines {
		if l["topic"] == "x/1" || l["event"] == "client.connected" {
			t.Errorf("topic trace of s/# has %v", l)
		}
	}
}

// A trace stops at its size bound, and its file stays within it.
func TestTraceBoundedSize(t *testing.T) {
	b := runBroker(t, nil)
	dir := t.TempDir()
	s := runAdmin(t, b.Server, admin.Options{TraceDir: dir})
	r := s.request("POST", "/api/v1/traces", admin.TraceRequest{Topic: "#", MaxBytes: 4096})
	expect(t, r, http.StatusCreated, "start trace")
	var info admin.TraceInfo
	r.JSON(t, &info)
	pub := traceClient(t, b.Addr, "pub")
	payload := strings.Repeat("x", 100)
	for i := range 100 {
		tokWait(t, "publish", pub.Publish(fmt.Sprintf("t/%d", i), 1, false, payload))
	}
	deadline := time.Now().Add(waitFor)
	for {
		s.request("GET", "/api/v1/traces/"+info.ID, nil).JSON(t, &info)
		if !info.Active || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info.Active || info.Stopped != "max_bytes" || info.Lost == 0 {
		t.Fatalf("trace after 100 messages of 100 bytes in 4096: %+v", info)
	}
	st, err := os.Stat(info.File)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 4096 || st.Size() != info.Bytes {
		t.Errorf("file of %d bytes (trace says %d), bound 4096", st.Size(), info.Bytes)
	}
	f, _ := os.ReadFile(info.File)
	if !hasLine(traceLines(t, f), "event", "trace.stopped", "reason", "max_bytes") {
		t.Errorf("no final line:\n%s", f)
	}
}

func TestTraceRequestsRefused(t *testing.T) {
	b := runBroker(t, nil)
	s := runAdmin(t, b.Server, admin.Options{})
	for _, c := range []struct {
		body   any
		status int
	}{
		{admin.TraceRequest{}, http.StatusBadRequest},
		{admin.TraceRequest{ClientID: "a", Topic: "b", Output: "stream"}, http.StatusBadRequest},
		{admin.TraceRequest{Topic: "a/#/b", Output: "stream"}, http.StatusBadRequest},
		{admin.TraceRequest{ClientID: "a", Duration: "2h", Output: "stream"}, http.StatusBadRequest},
		{admin.TraceRequest{ClientID: "a", MaxBytes: 10, Output: "stream"}, http.StatusBadRequest},
		{admin.TraceRequest{ClientID: "a", Output: "pipe"}, http.StatusBadRequest},
		{admin.TraceRequest{ClientID: "a"}, http.StatusBadRequest}, // file, without a trace directory
		{`{"client_id":"a","bogus":1}`, http.StatusBadRequest},
	} {
		expect(t, s.request("POST", "/api/v1/traces", c.body), c.status, fmt.Sprintf("POST %+v", c.body))
	}
	expect(t, s.request("DELETE", "/api/v1/traces/nope", nil), http.StatusNotFound, "stop unknown")

	// At most 8 at once; the gauge counts them.
	s2 := runAdmin(t, b.Server, admin.Options{TraceDir: t.TempDir()})
	var ids []string
	for i := range 8 {
		r := s2.request("POST", "/api/v1/traces", admin.TraceRequest{ClientID: fmt.Sprint("c", i)})
		expect(t, r, http.StatusCreated, "start")
		var info admin.TraceInfo
		r.JSON(t, &info)
		ids = append(ids, info.ID)
	}
	expect(t, s2.request("POST", "/api/v1/traces", admin.TraceRequest{ClientID: "c9"}), http.StatusTooManyRequests, "ninth trace")
	if m := s2.request("GET", "/metrics", nil); !bytes.Contains(m.Body, []byte("gannet_traces_active 8")) {
		t.Errorf("metrics without gannet_traces_active 8")
	}
	for _, id := range ids {
		expect(t, s2.request("DELETE", "/api/v1/traces/"+id, nil), http.StatusOK, "stop")
	}
	if m := s2.request("GET", "/metrics", nil); !bytes.Contains(m.Body, []byte("gannet_traces_active 0")) {
		t.Errorf("metrics without gannet_traces_active 0")
	}
}
