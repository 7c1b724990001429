package bridge_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// mosquitto is Debian's mosquitto broker run as a child process on a free
// loopback port, with a generated configuration.
type mosquitto struct {
	t    testing.TB
	bin  string
	dir  string
	Addr string
	conf string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// mosquittoBinary finds mosquitto; without it the test is skipped, or
// fails under CI (.ci/run installs it).
func mosquittoBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, c := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(c); e == nil {
				return c
			}
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("mosquitto missing under CI: install the mosquitto package")
		}
		t.Skip("mosquitto not installed (apt-get install mosquitto)")
	}
	return p
}

func freePort(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", gannettest.FreePort(t))
}

// startMosquitto runs mosquitto with extra configuration lines (a bridge,
// for instance); persistence keeps its sessions across stop and start.
func startMosquitto(t testing.TB, extra string) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, bin: mosquittoBinary(t), dir: t.TempDir(), Addr: freePort(t)}
	_, port, _ := net.SplitHostPort(m.Addr)
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	// user root: run as root, Mosquitto would switch to the user
	// mosquitto, which cannot write its persistence file here.
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 100000\nlog_dest stdout\n%s\n",
		port, m.dir, extra)
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %s: %s", m.Addr, m.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends mosquitto with SIGTERM (it saves its persistence file).
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
	if os.Getenv("GANNET_TEST_LOG") != "" {
		m.t.Logf("mosquitto output:\n%s", m.out.String())
	}
}

// TestBridgeToMosquitto: a Gannet bridge to Mosquitto 2.0, at 3.1.1 (with
// try_private) and 5.0: every direction, prefixes, QoS 0/1/2.
func TestBridgeToMosquitto(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			mq := startMosquitto(t, "")
			local := startGannet(t, false)
			m := local.bridges(testBridge("b", ver.v, directionRules(), mq.Addr))
			waitState(t, m, "b", bridge.StateConnected)
			checkDirections(t, local.Addr, mq.Addr)
		})
	}
}

// TestBridgeToMosquittoRetained: retained messages cross to and from
// Mosquitto with their flag.
func TestBridgeToMosquittoRetained(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			mq := startMosquitto(t, "")
			local := startGannet(t, false)
			publish(t, mq.Addr, "in/ret", "remote", 1, true)
			m := local.bridges(testBridge("b", ver.v, directionRules(), mq.Addr))
			waitState(t, m, "b", bridge.StateConnected)
			publish(t, local.Addr, "out/ret", "local", 1, true)
			eventually(t, "the remote retained message locally", func() bool {
				r, _ := local.Srv.Retained("in/ret")
				return len(r) == 1 && string(r[0].Payload) == "remote"
			})
			// Subscribed before Mosquitto has it, the message would come
			// live, without the flag: wait for Mosquitto's PUBACK first.
			eventually(t, "Mosquitto's acknowledgement", func() bool { return bridgeInfo(m, "b").Sent >= 1 })
			s := subscribe(t, mq.Addr, "out/ret", 1)
			if got := s.next(); !got.Retain || got.Payload != "local" {
				t.Fatalf("Mosquitto holds %+v, want the retained message", got)
			}
		})
	}
}

// TestBridgeToMosquittoLoops: Gannet and Mosquitto bridged both ways on
// "#": each message arrives once on each side.
func TestBridgeToMosquittoLoops(t *testing.T) {
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			mq := startMosquitto(t, "")
			local := startGannet(t, false)
			m := local.bridges(testBridge("b", ver.v, []bridge.Rule{{Pattern: "#", Direction: bridge.Both, QoS: 1}}, mq.Addr))
			waitState(t, m, "b", bridge.StateConnected)
			checkOnce(t, local.Addr, mq.Addr)
		})
	}
}

// checkOnce publishes on both sides and checks that each side sees each
// message once.
func checkOnce(t *testing.T, a, b string) {
	t.Helper()
	asub := subscribe(t, a, "#", 1)
	bsub := subscribe(t, b, "#", 1)
	for i := range 5 {
		publish(t, a, "a/l", fmt.Sprint("l", i), 1, false)
		publish(t, b, "a/r", fmt.Sprint("r", i), 1, false)
	}
	count := func(s *subscriber) map[string]int {
		got := map[string]int{}
		for range 10 {
			m := s.next()
			got[m.Payload]++
		}
		s.none()
		return got
	}
	for side, got := range map[string]map[string]int{"a": count(asub), "b": count(bsub)} {
		for i := range 5 {
			if got[fmt.Sprint("l", i)] != 1 || got[fmt.Sprint("r", i)] != 1 {
				t.Fatalf("side %s got %v, want each message once", side, got)
			}
		}
	}
}

// TestMosquittoBridgesToGannet: Mosquitto's own bridge, from a
// mosquitto.conf connection section, with Gannet as its remote (3.1.1
// with try_private, and 5.0).
func TestMosquittoBridgesToGannet(t *testing.T) {
	for _, ver := range []string{"mqttv311", "mqttv50"} {
		t.Run(ver, func(t *testing.T) {
			g := startGannet(t, false)
			conf := strings.Join([]string{
				"connection tognannet",
				"address " + g.Addr,
				"bridge_protocol_version " + ver,
				"try_private true",
				"notifications false",
				"cleansession true",
				"restart_timeout 1",
				"topic out/# out 2",
				"topic in/# in 2",
				"topic both/# both 2",
				"topic p/# both 1 site/ cloud/edge1/",
				"topic q0/# out 0",
			}, "\n")
			mq := startMosquitto(t, conf)
			eventually(t, "Mosquitto's bridge on Gannet", func() bool { return len(g.Srv.Subscriptions()) >= 3 })
			// Mosquitto is the local side here.
			checkDirections(t, mq.Addr, g.Addr)
		})
	}
}

// TestBridgeOutageMosquitto: the outage test with Mosquitto as the remote.
func TestBridgeOutageMosquitto(t *testing.T) {
	n := outageCount()
	mq := startMosquitto(t, "")
	local := startGannet(t, true)
	cfg := testBridge("b", packet.V311, []bridge.Rule{{Pattern: "o/#", Direction: bridge.Out, QoS: 1}}, mq.Addr)
	m := local.bridges(cfg)
	waitState(t, m, "b", bridge.StateConnected)
	ch := make(chan msg, n+100)
	sc := persistentSub(t, mq.Addr, "collector", "o/#", ch)
	sc.Disconnect(50)
	mq.stop()
	waitState(t, m, "b", bridge.StateDisconnected)

	p := connectPaho(t, local.Addr, "producer", true, nil)
	for i := range n {
		tok := p.Publish("o/seq", 1, false, fmt.Sprint(i))
		if i == n-1 && (!tok.WaitTimeout(waitFor) || tok.Error() != nil) {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	p.Disconnect(50)
	eventually(t, "every message queued for the remote", func() bool { return bridgeInfo(m, "b").Queued == n })
	local.stop()
	local.start()
	m = local.bridges(cfg)
	mq.start()
	persistentSub(t, mq.Addr, "collector", "o/#", ch)
	for i := range n {
		select {
		case got := <-ch:
			if got.Payload != fmt.Sprint(i) {
				t.Fatalf("message %d is %q: out of order or lost", i, got.Payload)
			}
		case <-time.After(waitFor):
			t.Fatalf("only %d of %d messages arrived", i, n)
		}
	}
}

// TestBridgeToMosquittoNotifications: the bridge's state is published on
// the remote Mosquitto too ("1"), and its will says "0" when the bridge
// goes away without a word.
func TestBridgeToMosquittoNotifications(t *testing.T) {
	mq := startMosquitto(t, "")
	local := startGannet(t, false)
	s := subscribe(t, mq.Addr, "$SYS/broker/connection/bridge-n/state", 1)
	m := local.bridges(testBridge("n", packet.V311, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, mq.Addr))
	waitState(t, m, "n", bridge.StateConnected)
	if got := s.next(); got.Payload != "1" {
		t.Fatalf("got %+v, want 1", got)
	}
	local.stop() // closes the bridge's connection without DISCONNECT
	if got := s.next(); got.Payload != "0" {
		t.Fatalf("got %+v, want 0 (the will)", got)
	}
}
