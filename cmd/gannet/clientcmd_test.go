package main

// Tests of gannet pub and gannet sub: they run the binary that TestMain
// builds (gannetBin) against an in-process broker, and observe it with the
// Go client.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// cmdWait bounds every wait of these tests, runs of the binary included.
const cmdWait = 10 * time.Second

// cmdBroker is an in-process broker for the command tests.
type cmdBroker struct {
	host, port string
}

// runCmdBroker starts a broker with opts (defaults when nil), on a TLS
// listener when cfg is not nil.
func runCmdBroker(t *testing.T, opts *broker.Options, cfg *tls.Config) *cmdBroker {
	t.Helper()
	o := broker.DefaultOptions()
	if opts != nil {
		o = *opts
	}
	o.Logger = gannettest.Logger()
	l := gannettest.Listen(t)
	host, port, _ := net.SplitHostPort(l.Addr().String())
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	gannettest.RunBrokerOn(t, o, l)
	return &cmdBroker{host: host, port: port}
}

// args returns -h and -p for the broker followed by more.
func (b *cmdBroker) args(more ...string) []string {
	return append([]string{"-h", b.host, "-p", b.port}, more...)
}

// watch subscribes a Go client to filter and returns its messages.
func (b *cmdBroker) watch(t *testing.T, version byte, filter string) <-chan *client.Message {
	t.Helper()
	o := client.DefaultOptions()
	o.Server = "mqtt://" + net.JoinHostPort(b.host, b.port)
	o.Version = version
	o.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan *client.Message, 100)
	if _, err := c.Subscribe(ctx, client.Subscription{Filter: filter, QoS: 1, Chan: ch}); err != nil {
		t.Fatal(err)
	}
	return ch
}

// publish publishes with a Go client.
func (b *cmdBroker) publish(t *testing.T, name, payload string, qos byte, retain bool) {
	t.Helper()
	o := client.DefaultOptions()
	o.Server = "mqtt://" + net.JoinHostPort(b.host, b.port)
	o.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx, packet.Success)
	if err := c.Publish(ctx, name, []byte(payload), client.PublishOptions{QoS: qos, Retain: retain}); err != nil {
		t.Fatal(err)
	}
}

func nextMessage(t *testing.T, ch <-chan *client.Message) *client.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(cmdWait):
		t.Fatal("no message")
		return nil
	}
}

// run runs gannet with args and stdin, and returns its output and exit code.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, gannetBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run gannet %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("gannet %v did not finish within %v", args, cmdWait)
	}
	return out.String(), errb.String(), code
}

// mustRun runs gannet and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, stdin, args...)
	if code != want {
		t.Fatalf("gannet %s: exit code %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

// TestPubSubCommands: gannet sub -C 1 -v receives what gannet pub
// publishes, at 3.1.1 and 5.0.
func TestPubSubCommands(t *testing.T) {
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := runCmdBroker(t, nil, nil)
			ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
			defer cancel()
			sub := exec.CommandContext(ctx, gannetBin, b.args("sub", "-V", v, "-t", "rt/#", "-v", "-C", "1", "-q", "1")...)
			var out, errb bytes.Buffer
			sub.Stdout, sub.Stderr = &out, &errb
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- sub.Wait() }()
			// Publish until the subscriber, once subscribed, gets one.
			var err error
		publishing:
			for i := 0; ; i++ {
				mustRun(t, 0, "", b.args("pub", "-V", v, "-q", "1", "-t", "rt/x", "-m", fmt.Sprintf("hello %d", i))...)
				select {
				case err = <-exited:
					break publishing
				case <-time.After(50 * time.Millisecond):
				}
				if ctx.Err() != nil {
					t.Fatal("gannet sub did not receive a message")
				}
			}
			if err != nil {
				t.Fatalf("gannet sub: %v\n%s", err, errb.String())
			}
			line := out.String()
			if !strings.HasPrefix(line, "rt/x hello ") || strings.Count(line, "\n") != 1 {
				t.Fatalf("gannet sub printed %q, want one line \"rt/x hello N\"", line)
			}
		})
	}
}

// TestPubToClient checks what gannet pub sends, observed by a Go client.
func TestPubToClient(t *testing.T) {
	t.Parallel()
	b := runCmdBroker(t, nil, nil)
	ch := b.watch(t, packet.V5, "pc/#")

	mustRun(t, 0, "", b.args("pub", "-t", "pc/m", "-m", "plain", "-q", "2")...)
	if m := nextMessage(t, ch); m.Topic != "pc/m" || string(m.Payload) != "plain" {
		t.Fatalf("got %q %q", m.Topic, m.Payload)
	}

	file := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(file, []byte("from\x00file\n"), 0o600)
	mustRun(t, 0, "", b.args("pub", "-t", "pc/f", "-f", file)...)
	if m := nextMessage(t, ch); string(m.Payload) != "from\x00file\n" {
		t.Fatalf("-f sent %q", m.Payload)
	}

	mustRun(t, 0, "all\nof it", b.args("pub", "-t", "pc/s", "-s")...)
	if m := nextMessage(t, ch); string(m.Payload) != "all\nof it" {
		t.Fatalf("-s sent %q", m.Payload)
	}

	mustRun(t, 0, "one\n\ntwo\r\nthree", b.args("pub", "-t", "pc/l", "-l", "-q", "1")...)
	for _, want := range []string{"one", "two", "three"} {
		if m := nextMessage(t, ch); m.Topic != "pc/l" || string(m.Payload) != want {
			t.Fatalf("-l sent %q, want %q", m.Payload, want)
		}
	}

	mustRun(t, 0, "", b.args("pub", "-t", "pc/n", "-n")...)
	if m := nextMessage(t, ch); m.Topic != "pc/n" || len(m.Payload) != 0 {
		t.Fatalf("-n sent %q %q", m.Topic, m.Payload)
	}

	mustRun(t, 0, "", "pub", "-L", "mqtt://"+net.JoinHostPort(b.host, b.port)+"/pc/url", "-m", "via -L")
	if m := nextMessage(t, ch); m.Topic != "pc/url" || string(m.Payload) != "via -L" {
		t.Fatalf("-L sent %q %q", m.Topic, m.Payload)
	}

	mustRun(t, 0, "", b.args("pub", "-V", "mqttv5", "-t", "pc/props", "-m", "p",
		"-D", "publish", "user-property", "origin", "lab",
		"-D", "publish", "content-type", "text/plain",
		"-D", "connect", "session-expiry-interval", "0")...)
	m := nextMessage(t, ch)
	if len(m.Properties.User) != 1 || m.Properties.User[0] != (packet.UserProperty{Key: "origin", Value: "lab"}) || m.Properties.ContentType != "text/plain" {
		t.Fatalf("-D properties arrived as %+v", m.Properties)
	}
}

func TestRetainedCommands(t *testing.T) {
	t.Parallel()
	b := runCmdBroker(t, nil, nil)
	mustRun(t, 0, "", b.args("pub", "-t", "ret/a", "-m", "kept", "-r", "-q", "1")...)
	if out := mustRun(t, 0, "", b.args("sub", "-t", "ret/#", "-v", "-C", "1", "-W", "5")...); out != "ret/a kept\n" {
		t.Fatalf("sub printed %q", out)
	}
	if out := mustRun(t, 0, "", b.args("sub", "-t", "ret/a", "-N", "-C", "1", "-W", "5")...); out != "kept" {
		t.Fatalf("sub -N printed %q", out)
	}
	// -R hides stale (retained) messages: nothing comes, -W expires.
	mustRun(t, exitTimeout, "", b.args("sub", "-t", "ret/a", "-R", "-C", "1", "-W", "1")...)
	// -n -r clears the retained message.
	mustRun(t, 0, "", b.args("pub", "-t", "ret/a", "-n", "-r", "-q", "1")...)
	mustRun(t, exitTimeout, "", b.args("sub", "-t", "ret/a", "-C", "1", "-W", "1")...)
}

// TestSubPersistentSession: sub -c -E makes a session, messages queue in
// it, and the next sub -c prints them in order.
func TestSubPersistentSession(t *testing.T) {
	t.Parallel()
	b := runCmdBroker(t, nil, nil)
	for _, v := range []string{"mqttv311", "mqttv5"} {
		extra := []string{"-V", v}
		if v == "mqttv5" {
			extra = append(extra, "-x", "60")
		}
		id := "persist-" + v
		mustRun(t, 0, "", b.args(append(extra, "sub", "-c", "-i", id, "-q", "1", "-t", "ps/"+v, "-E")...)...)
		mustRun(t, 0, "a\nb\nc\n", b.args("pub", "-q", "1", "-t", "ps/"+v, "-l")...)
		out := mustRun(t, 0, "", b.args(append(extra, "sub", "-c", "-i", id, "-q", "1", "-t", "ps/"+v, "-v", "-C", "3", "-W", "5")...)...)
		if want := fmt.Sprintf("ps/%[1]s a\nps/%[1]s b\nps/%[1]s c\n", v); out != want {
			t.Fatalf("%s: sub printed %q, want %q", v, out, want)
		}
	}
}

func TestWillCommand(t *testing.T) {
	t.Parallel()
	b := runCmdBroker(t, nil, nil)
	ch := b.watch(t, packet.V311, "wills/#")
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	sub := exec.CommandContext(ctx, gannetBin, b.args("sub", "-t", "nothing", "-i", "dying", "--will-topic", "wills/dying", "--will-payload", "bye", "--will-qos", "1")...)
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the command has subscribed, kill it: the broker sees a network
	// failure and publishes the will.
	deadline := time.Now().Add(cmdWait)
	for !b.hears(t, "nothing") {
		if time.Now().After(deadline) {
			t.Fatal("gannet sub did not connect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sub.Process.Kill()
	sub.Wait()
	if m := nextMessage(t, ch); m.Topic != "wills/dying" || string(m.Payload) != "bye" {
		t.Fatalf("will %q %q", m.Topic, m.Payload)
	}
}

// hears reports whether some client subscribes to name: it publishes a 5.0
// QoS 1 message, whose PUBACK says 0x10 when no subscriber matched.
func (b *cmdBroker) hears(t *testing.T, name string) bool {
	t.Helper()
	nc, err := net.DialTimeout("tcp", net.JoinHostPort(b.host, b.port), cmdWait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(cmdWait))
	var buf []byte
	buf, _ = (&packet.Connect{Version: packet.V5, CleanStart: true, ClientID: "probe"}).Append(buf, packet.V5)
	buf, _ = (&packet.Publish{QoS: 1, PacketID: 1, Topic: name}).Append(buf, packet.V5)
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	dec := packet.Decoder{Version: packet.V5}
	var in []byte
	r := bufio.NewReader(nc)
	for {
		var tmp [256]byte
		n, err := r.Read(tmp[:])
		in = append(in, tmp[:n]...)
		for len(in) > 0 {
			p, used, derr := dec.Decode(in)
			if derr != nil {
				t.Fatal(derr)
			}
			if p == nil {
				break
			}
			in = in[used:]
			if ack, ok := p.(*packet.Puback); ok {
				return ack.ReasonCode == packet.Success
			}
		}
		if err != nil {
			if err == io.EOF {
				return false
			}
			t.Fatal(err)
		}
	}
}

// TestExitCodes checks the exit code of each kind of failure.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	b := runCmdBroker(t, nil, nil)
	o := broker.DefaultOptions()
	o.MaxTopicLevels = 2
	limited := runCmdBroker(t, &o, nil)
	closed := fmt.Sprint(freeTCPPort(t))
	for _, tc := range []struct {
		name string
		want int
		args []string
	}{
		{"unknown flag", exitUsage, b.args("pub", "-t", "a", "-m", "x", "--bogus")},
		{"no topic", exitUsage, b.args("pub", "-m", "x")},
		{"no message", exitUsage, b.args("pub", "-t", "a")},
		{"two messages", exitUsage, b.args("pub", "-t", "a", "-m", "x", "-n")},
		{"qos 3", exitUsage, b.args("pub", "-t", "a", "-m", "x", "-q", "3")},
		{"wildcard topic", exitUsage, b.args("pub", "-t", "a/#", "-m", "x")},
		{"bad version", exitUsage, b.args("pub", "-t", "a", "-m", "x", "-V", "mqttv4")},
		{"-D without 5.0", exitUsage, b.args("pub", "-t", "a", "-m", "x", "-D", "publish", "content-type", "t")},
		{"-D unknown property", exitUsage, b.args("pub", "-V", "mqttv5", "-t", "a", "-m", "x", "-D", "publish", "bogus", "1")},
		{"-D wrong packet", exitUsage, b.args("pub", "-V", "mqttv5", "-t", "a", "-m", "x", "-D", "publish", "receive-maximum", "1")},
		{"stray argument", exitUsage, b.args("pub", "-t", "a", "-m", "x", "extra")},
		{"sub without topic", exitUsage, b.args("sub")},
		{"sub bad filter", exitUsage, b.args("sub", "-t", "a/#/b")},
		{"missing file", exitInput, b.args("pub", "-t", "a", "-f", "/nonexistent/file")},
		{"connection refused", exitConnect, []string{"pub", "-h", "127.0.0.1", "-p", closed, "-t", "a", "-m", "x"}},
		{"sub connection refused", exitConnect, []string{"sub", "-h", "127.0.0.1", "-p", closed, "-t", "a"}},
		{"connack refused", exitRefused, b.args("pub", "-V", "mqttv31", "-i", strings.Repeat("x", 24), "-t", "a", "-m", "x")},
		{"subscription refused", exitRejected, limited.args("sub", "-t", "a/b/c", "-W", "5")},
		{"disconnected by the broker", exitLost, limited.args("pub", "-V", "mqttv5", "-q", "1", "-t", "a/b/c", "-m", "x", "-W", "5")},
		{"sub timeout", exitTimeout, b.args("sub", "-t", "quiet", "-W", "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, "", tc.args...)
			if code != tc.want {
				t.Fatalf("gannet %s: exit code %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.want, stderr)
			}
			if code != 0 && strings.TrimSpace(stderr) == "" {
				t.Error("no explanation on stderr")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"pub", "sub"} {
		out := mustRun(t, 0, "", cmd, "--help")
		for _, want := range []string{"-h, --host", "Exit codes", "Examples", "-W, --timeout", "-D, --property"} {
			if !strings.Contains(out, want) {
				t.Errorf("gannet %s --help lacks %q", cmd, want)
			}
		}
	}
}

// TestTLSCommands: --cafile turns on TLS and verifies the server, and
// --insecure skips only the host name check.
func TestTLSCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, cfg := testCert(t, dir, "broker.invalid")
	b := runCmdBroker(t, nil, cfg)
	// The certificate names broker.invalid, not 127.0.0.1.
	_, stderr, code := run(t, "", b.args("pub", "--cafile", caFile, "-t", "a", "-m", "x")...)
	if code != exitConnect || !strings.Contains(stderr, "certificate") {
		t.Fatalf("host name mismatch: exit %d, %s", code, stderr)
	}
	mustRun(t, 0, "", b.args("pub", "--cafile", caFile, "--insecure", "-t", "a", "-m", "x")...)
	mustRun(t, 0, "", "pub", "-L", "mqtts://"+net.JoinHostPort(b.host, b.port)+"/a", "--cafile", caFile, "--insecure", "-m", "x")
	// --insecure still verifies the chain.
	other, _ := testCert(t, t.TempDir(), "broker.invalid")
	mustRun(t, exitConnect, "", b.args("pub", "--cafile", other, "--insecure", "-t", "a", "-m", "x")...)
}

// testCert writes a self-signed CA certificate for name to dir and returns
// its file and a server configuration using it.
func testCert(t *testing.T, dir, name string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func freeTCPPort(t *testing.T) int { t.Helper(); return gannettest.FreePort(t) }
