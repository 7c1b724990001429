package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/bench"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
)

// gannetBin is the gannet binary TestMain builds for the tests that run the
// command as a user would.
var gannetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gannet-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gannetBin = filepath.Join(dir, "gannet")
	build := exec.Command("go", "build", "-o", gannetBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building gannet:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startBroker runs an in-process broker on a free loopback port and
// returns its port.
func startBroker(t *testing.T) string {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.Logger = gannettest.Logger()
	b := gannettest.RunBroker(t, opts)
	_, port, _ := net.SplitHostPort(b.Addr)
	return port
}

func runGannet(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(gannetBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestBenchJSON runs "gannet bench" with a message count and --json, and
// reads the report back.
func TestBenchJSON(t *testing.T) {
	port := startBroker(t)
	out, errOut, err := runGannet(t, "bench", "pubsub", "-h", "127.0.0.1", "-p", port,
		"--shape", "fan-out", "-c", "3", "-C", "200", "-q", "1", "-V", "5", "--json")
	if err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, yet: %q", errOut)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Scenario != bench.PubSub || r.Shape != bench.FanOut || r.Protocol != "5.0" || r.QoS != 1 {
		t.Errorf("report of the wrong run: %+v", r)
	}
	if m := r.Messages; m == nil || m.Sent != 200 || m.Received != 600 || m.Acked != 200 {
		t.Errorf("messages %+v, want 200 sent and acked, 600 received", m)
	}
	if r.Latency == nil || r.Latency.P50 <= 0 || r.Latency.P999 < r.Latency.P50 {
		t.Errorf("latency %+v", r.Latency)
	}
}

// TestBenchText runs the conn scenario and checks the text report.
func TestBenchText(t *testing.T) {
	port := startBroker(t)
	out, errOut, err := runGannet(t, "bench", "conn", "-p", port, "-c", "20", "--duration", "200ms")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"gannet bench conn: 20 connections", "20 of 20", "20 held for", "errors       none"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchFlags: -h is the host (as for mosquitto_pub), --help the help;
// bad flags are refused.
func TestBenchFlags(t *testing.T) {
	out, _, err := runGannet(t, "bench", "--help")
	if err != nil || !strings.Contains(out, "-h, --host") || !strings.Contains(out, "--help") {
		t.Errorf("--help: %v\n%s", err, out)
	}
	// A closed port: the run reports the dial errors and fails.
	port := freePort(t) // below the ephemeral range: nothing takes it meanwhile
	out, errOut, err := runGannet(t, "bench", "-h", "127.0.0.1", "-p", port, "-c", "1", "-C", "1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(out, "dial: connection refused") || !strings.Contains(errOut, "no client could connect") {
		t.Errorf("closed port: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	for _, args := range [][]string{
		{"bench", "nosuch"},
		{"bench", "-q", "3"},
		{"bench", "-V", "4.0"},
		{"bench", "--shape", "star"},
		{"bench", "--rate", "1", "--total-rate", "2"},
	} {
		if _, errOut, err := runGannet(t, args...); err == nil || errOut == "" {
			t.Errorf("%v: accepted", args)
		}
	}
}
