package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// TestBridgeQoS2SurvivesKill9 kills the local broker (a child process,
// SIGKILL) in the middle of the QoS 2 exchange of a message crossing the
// bridge, restarts it, and checks that the subscriber on the other side
// gets every message exactly once, in order.
//
// out: messages to the remote. The bridge resumes the exchange with the
// same packet identifier, PUBLISH again with DUP before PUBREC
// ([MQTT-4.3.3-10] on the remote: not delivered again) and PUBREL after it,
// never a new PUBLISH [MQTT-4.3.3-6] [MQTT-4.4.0-1]. A proxy between the
// bridge and the remote holds the exchange at one of three steps:
//   - pubrec: the remote got the PUBLISH and sent PUBREC, which is held;
//   - pubrel: the bridge sent PUBREL, which is held;
//   - pubcomp: the remote completed the exchange, and its PUBCOMP is held.
//
// in: messages from the remote, to a persistent subscriber of the local
// broker. The proxy holds the bridge's PUBREC (the message is durable
// locally, the remote does not know), the remote's PUBREL, or the
// bridge's PUBCOMP. The remote's PUBLISH sent again with DUP and the same
// identifier reaches the local broker with that identifier, which it still
// holds [MQTT-4.3.3-10], and its PUBREL is passed on.
//
// The message at which the exchange is held and the protocol version are
// drawn at random (the seed is logged; GANNET_SEED replays it). The
// remote is an in-process Gannet, and Debian's mosquitto (which delivers
// at PUBREL). The default run kills once per step, direction and remote;
// GANNET_LONG=1 kills 8 times each.
func TestBridgeQoS2SurvivesKill9(t *testing.T) {
	bin := buildGannet(t)
	t.Run("out", func(t *testing.T) { qos2KillTest(t, bin, false) })
	t.Run("in", func(t *testing.T) { qos2KillTest(t, bin, true) })
}

func qos2KillTest(t *testing.T, bin string, inbound bool) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GANNET_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (GANNET_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	rounds := 1
	if os.Getenv("GANNET_LONG") != "" {
		rounds = 8
	}
	remotes := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"gannet", func(t *testing.T) string { return startGannet(t, false).Addr }},
		{"mosquitto", func(t *testing.T) string { return startMosquitto(t, "").Addr }},
	}
	for _, rm := range remotes {
		t.Run(rm.name, func(t *testing.T) {
			raddr := rm.start(t)
			for i := 0; i < rounds; i++ {
				for _, step := range []string{"pubrec", "pubrel", "pubcomp"} {
					r := &killRound{bin: bin, raddr: raddr, step: step, inbound: inbound, total: 12,
						ver: []string{"3.1.1", "5"}[rng.IntN(2)]}
					r.at = 2 + rng.IntN(r.total-4) // at least 2 complete before: a new client's first identifiers differ
					r.name = fmt.Sprintf("%s-%d-%s-v%s-at%d", rm.name, i, step, r.ver, r.at)
					t.Run(r.name, r.run)
				}
			}
		})
	}
}

// killRound is one kill: total messages, the exchange of number at
// (counting from 0) held at step.
type killRound struct {
	bin, raddr, name, step, ver string
	inbound                     bool
	total, at                   int
}

// heldPacket is the packet type the proxy holds, and whether it goes to
// the remote (else to the bridge).
func (r *killRound) heldPacket() (typ byte, toRemote bool) {
	typ = map[string]byte{"pubrec": 5, "pubrel": 6, "pubcomp": 7}[r.step]
	// The receiver of the message sends PUBREC and PUBCOMP.
	return typ, r.inbound != (r.step == "pubrel")
}

func (r *killRound) run(t *testing.T) {
	typ, toRemote := r.heldPacket()
	px := startHoldProxy(t, r.raddr, typ, toRemote, r.at)
	dir := t.TempDir()
	laddr := freePort(t)
	conf := filepath.Join(dir, "gannet.yaml")
	direction := "out"
	if r.inbound {
		direction = "in"
	}
	yaml := fmt.Sprintf(`sys:
  interval: 0s
bridges:
  - name: q2
    addresses: [%s]
    protocol_version: "%s"
    remote_clientid: %s
    notifications: false
    restart_min: 20ms
    restart_max: 100ms
    topics:
      - pattern: %s/#
        direction: %s
        qos: 2
`, px.addr(), r.ver, r.name, r.name, direction)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	child := &gannetChild{t: t, bin: r.bin, addr: laddr, args: []string{"--listen", laddr, "--data-dir", filepath.Join(dir, "data"),
		"--store", "pebble", "--log-level", logLevel(), "--config", conf}}

	got := make(chan string, 1000)
	pubAddr := laddr // where the messages are published
	if r.inbound {
		pubAddr = r.raddr
	} else {
		sub := connectPaho(t, r.raddr, "sub-"+r.name, true, nil)
		if tok := sub.Subscribe(r.name+"/#", 2, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("subscribe on the remote: %v", tok.Error())
		}
	}

	child.start()
	defer child.kill()
	// The bridge dials the remote once its local subscriptions are made.
	select {
	case <-px.dialed:
	case <-time.After(waitFor):
		t.Fatal("the bridge never dialled the remote")
	}
	if r.inbound {
		// A persistent subscriber of the local broker, which reconnects
		// after the kill; its own link keeps QoS 2 exactly once.
		o := client.DefaultOptions()
		o.Server = "mqtt://" + laddr
		o.ClientID = "sub-" + r.name
		o.ResumeSession = true
		o.Properties.SetUint(packet.PropSessionExpiry, 3600)
		o.AutoReconnect = true
		o.ReconnectMin, o.ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
		o.Logger = testLogger()
		o.OnMessage = func(m *client.Message) { got <- string(m.Payload) }
		sub, err := client.Dial(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if _, err := sub.Subscribe(ctx, client.Subscription{Filter: r.name + "/#", QoS: 2}); err != nil {
			t.Fatal(err)
		}
		px.open()
		select { // the bridge's subscription on the remote is made
		case <-px.subacked:
		case <-time.After(waitFor):
			t.Fatal("the bridge did not subscribe on the remote")
		}
	}
	pub := connectPaho(t, pubAddr, "pub-"+r.name, true, nil)
	for i := 0; i < r.total; i++ {
		if tok := pub.Publish(r.name+"/m", 2, false, strconv.Itoa(i)); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	px.open() // outgoing: the bridge connects now, with every message queued
	select {
	case <-px.held:
	case <-time.After(waitFor):
		t.Fatalf("the exchange of message %d never reached %s", r.at, r.step)
	}
	child.kill()
	px.passAll()
	child.start()

	var seq []string
	deadline := time.After(waitFor)
	for len(seq) < r.total {
		select {
		case p := <-got:
			seq = append(seq, p)
		case <-deadline:
			t.Fatalf("got %v, want 0 to %d once each, in order", seq, r.total-1)
		}
	}
	// A last message after them: a duplicate sent before it shows.
	pub = connectPaho(t, pubAddr, "pub2-"+r.name, true, nil)
	if tok := pub.Publish(r.name+"/m", 2, false, "end"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish the last message: %v", tok.Error())
	}
	for seq[len(seq)-1] != "end" {
		select {
		case p := <-got:
			seq = append(seq, p)
		case <-time.After(waitFor):
			t.Fatalf("the last message did not arrive; got %v", seq)
		}
	}
	want := make([]string, 0, r.total+1)
	for i := 0; i < r.total; i++ {
		want = append(want, strconv.Itoa(i))
	}
	want = append(want, "end")
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v (each once, in order)", seq, want)
	}
}

// buildGannet builds the gannet command into the test's directory.
func buildGannet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gannet")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gannet-mqtt/gannet/cmd/gannet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gannet: %v\n%s", err, out)
	}
	return bin
}

// gannetChild is the gannet command as a child process.
type gannetChild struct {
	t    *testing.T
	bin  string
	addr string
	args []string
	cmd  *exec.Cmd
}

func (c *gannetChild) start() {
	c.t.Helper()
	c.cmd = exec.Command(c.bin, c.args...)
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for {
		nc, err := net.DialTimeout("tcp", c.addr, 100*time.Millisecond)
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("gannet did not listen on %s", c.addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the child with SIGKILL: nothing of it runs after.
func (c *gannetChild) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
}

// holdProxy forwards MQTT packets between the bridge and the remote. It
// refuses connections until open; then it forwards until the exchange of
// the message numbered at reaches its step, holds from there on what goes
// the way of the held packet (so the exchange stays there) and signals
// held. After passAll, new connections pass everything.
type holdProxy struct {
	t        testing.TB
	l        net.Listener
	remote   string
	typ      byte // the packet type held
	toRemote bool // held on its way to the remote, else to the bridge
	at       int
	held     chan struct{}
	dialed   chan struct{} // closed at the first connection: the bridge has started
	subacked chan struct{} // closed at the first SUBACK to the bridge

	mu       sync.Mutex
	opened   bool
	pass     bool
	count    int // packets of the held type seen
	fired    bool
	conns    []net.Conn
	heldOnce sync.Once
	dialOnce sync.Once
	subOnce  sync.Once
}

func startHoldProxy(t testing.TB, remote string, typ byte, toRemote bool, at int) *holdProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{t: t, l: l, remote: remote, typ: typ, toRemote: toRemote, at: at,
		held: make(chan struct{}), dialed: make(chan struct{}), subacked: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *holdProxy) addr() string { return p.l.Addr().String() }

func (p *holdProxy) open() {
	p.mu.Lock()
	p.opened = true
	p.mu.Unlock()
}

func (p *holdProxy) passAll() {
	p.mu.Lock()
	p.pass = true
	p.mu.Unlock()
}

func (p *holdProxy) serve() {
	for {
		bc, err := p.l.Accept()
		if err != nil {
			return
		}
		p.dialOnce.Do(func() { close(p.dialed) })
		p.mu.Lock()
		opened, pass := p.opened, p.pass
		p.mu.Unlock()
		if !opened {
			bc.Close()
			continue
		}
		rc, err := net.Dial("tcp", p.remote)
		if err != nil {
			bc.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, bc, rc)
		p.mu.Unlock()
		toRemote, toBridge := byte(0), byte(0)
		switch {
		case pass:
		case p.toRemote:
			toRemote = p.typ
		default:
			toBridge = p.typ
		}
		go p.pump(bc, rc, toRemote)
		go p.pump(rc, bc, toBridge)
	}
}

// pump copies packets from src to dst; once the packet of type hold
// numbered p.at has been seen it forwards nothing more.
func (p *holdProxy) pump(src, dst net.Conn, hold byte) {
	defer src.Close()
	defer dst.Close()
	r := bufio.NewReader(src)
	holding := false
	for {
		pk, err := readPacket(r)
		if err != nil {
			return
		}
		if pk[0]>>4 == 9 { // SUBACK
			p.subOnce.Do(func() { close(p.subacked) })
		}
		if hold != 0 && pk[0]>>4 == hold {
			p.mu.Lock()
			if !p.fired && p.count == p.at {
				p.fired = true
				holding = true
				p.heldOnce.Do(func() { close(p.held) })
			}
			p.count++
			p.mu.Unlock()
		}
		if holding {
			continue
		}
		if _, err := dst.Write(pk); err != nil {
			return
		}
	}
}

// readPacket reads one MQTT control packet, fixed header included.
func readPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	pk := []byte{first}
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		pk = append(pk, b)
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(pk, body...), nil
}

// logLevel is the child's: GANNET_TEST_LOG=1 shows its debug log.
func logLevel() string {
	if os.Getenv("GANNET_TEST_LOG") != "" {
		return "debug"
	}
	return "warn"
}
