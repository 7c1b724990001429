package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/bench"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
)

// gannet bench dials over TLS when given --cafile (checking the host name
// unless --insecure, as pub and sub do), and over WebSocket with
// --transport ws.
func TestBenchTransports(t *testing.T) {
	t.Parallel()
	caFile, cfg := testCert(t, t.TempDir(), "broker.invalid")
	tb := runCmdBroker(t, nil, cfg)

	benchJSON := func(args ...string) (*bench.Report, string, error) {
		out, errOut, err := runGannet(t, append([]string{"bench", "conn", "-c", "5", "--duration", "100ms", "--connect-timeout", "3s", "--json"}, args...)...)
		var r bench.Report
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil && !strings.Contains(errOut, "transport") {
			t.Fatalf("%v: %s", jerr, out)
		}
		return &r, errOut, err
	}
	// The certificate names broker.invalid, not 127.0.0.1.
	if r, errOut, err := benchJSON(tb.args("--cafile", caFile)...); err == nil || r.Connections.Established != 0 || len(r.Errors) == 0 {
		t.Fatalf("host name mismatch: err %v, report %+v, stderr %s", err, r, errOut)
	}
	r, errOut, err := benchJSON(tb.args("--cafile", caFile, "--insecure")...)
	if err != nil || r.Connections.Established != 5 || r.Broker != "tls://"+tb.host+":"+tb.port {
		t.Fatalf("tls: err %v, report %+v, stderr %s", err, r, errOut)
	}

	o := broker.DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	srv, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lc := listener.DefaultConfig(listener.TypeWS, "127.0.0.1:0")
	lc.Logger = o.Logger
	l, err := listener.Listen(lc)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeListener(l, broker.ListenerOptions{})
	addr := l.Addr().String()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	r, errOut, err = benchJSON("-p", port, "--transport", "ws")
	if err != nil || r.Connections.Established != 5 || r.Broker != "ws://"+addr+"/mqtt" {
		t.Fatalf("ws: err %v, report %+v, stderr %s", err, r, errOut)
	}
	if _, errOut, err := benchJSON("-p", port, "--transport", "quic"); err == nil || !strings.Contains(errOut, "transport") {
		t.Fatalf("bad transport: err %v, stderr %s", err, errOut)
	}
}
