package bridge_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// tap is a TCP proxy in front of a remote broker that decodes what the
// bridge sends it, to check the packets on the wire.
type tap struct {
	t    testing.TB
	Addr string
	l    net.Listener
	mu   sync.Mutex
	pubs []*packet.Publish // PUBLISH packets from the bridge
	bad  error             // a stream that could not be decoded
}

func startTap(t testing.TB, remote string) *tap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tap{t: t, Addr: l.Addr().String(), l: l}
	var conns sync.WaitGroup
	var open []net.Conn // under p.mu
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range open {
			c.Close()
		}
		p.mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", remote)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			open = append(open, c, r)
			p.mu.Unlock()
			conns.Add(2)
			go func() { // remote to bridge, as is
				defer conns.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := r.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
			go func() { // bridge to remote, decoded on the way
				defer conns.Done()
				defer r.Close()
				defer c.Close()
				var d packet.Decoder
				var pending []byte
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := r.Write(buf[:n]); werr != nil {
							return
						}
						pending = append(pending, buf[:n]...)
						for {
							pk, used, derr := d.Decode(pending)
							if derr != nil {
								p.mu.Lock()
								p.bad = derr
								p.mu.Unlock()
								return
							}
							if pk == nil {
								break
							}
							if pub, ok := pk.(*packet.Publish); ok {
								p.mu.Lock()
								p.pubs = append(p.pubs, pub)
								p.mu.Unlock()
							}
							pending = pending[used:]
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// publishes returns the PUBLISH packets the bridge sent so far.
func (p *tap) publishes() []*packet.Publish {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bad != nil {
		p.t.Fatalf("the bridge's stream could not be decoded: %v", p.bad)
	}
	return append([]*packet.Publish(nil), p.pubs...)
}

// TestBridgeRemoteTopicAliasMaximum: the bridge uses topic aliases to a
// 5.0 remote up to the Topic Alias Maximum the remote announced, never
// beyond it, and none when the remote announced none [MQTT-3.3.2-9]
// [MQTT-3.3.2-10] (a client must not send an alias above the server's
// Topic Alias Maximum, nor any when it is 0 or absent).
func TestBridgeRemoteTopicAliasMaximum(t *testing.T) {
	for _, max := range []uint16{3, 0} {
		t.Run(fmt.Sprint("max=", max), func(t *testing.T) {
			local := startGannet(t, false)
			remote := startGannetWith(t, false, func(o *broker.Options) { o.TopicAliasMaximum = max })
			tp := startTap(t, remote.Addr)
			m := local.bridges(testBridge("ta", packet.V5, []bridge.Rule{{Pattern: "a/#", QoS: 1}}, tp.Addr))
			waitState(t, m, "ta", bridge.StateConnected)
			rsub := subscribe(t, remote.Addr, "a/#", 1)
			p := connectPaho(t, local.Addr, "producer", true, nil)
			const topics, rounds = 6, 3 // more topics than aliases
			for r := range rounds {
				for i := range topics {
					tok := p.Publish(fmt.Sprintf("a/%d", i), 1, false, fmt.Sprint(r))
					if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
						t.Fatalf("publish: %v", tok.Error())
					}
				}
			}
			for r := range rounds {
				for i := range topics {
					want := msg{Topic: fmt.Sprintf("a/%d", i), Payload: fmt.Sprint(r), QoS: 1}
					if got := rsub.next(); got != want {
						t.Fatalf("got %+v, want %+v", got, want)
					}
				}
			}
			aliased := 0
			for _, pub := range tp.publishes() {
				if !strings.HasPrefix(pub.Topic, "a/") && pub.Topic != "" {
					continue // a notification
				}
				if pub.Properties.Has(packet.PropTopicAlias) {
					a := pub.Properties.TopicAlias
					if a == 0 || a > max {
						t.Fatalf("the bridge sent topic alias %d (topic %q); the remote's maximum is %d", a, pub.Topic, max)
					}
					aliased++
				}
			}
			t.Logf("%d of the bridge's PUBLISH packets carried a topic alias", aliased)
			if max > 0 && aliased == 0 {
				t.Fatalf("no topic alias used within the remote's maximum %d", max)
			}
			if in := bridgeInfo(m, "ta"); in.Connects != 1 || in.Dropped != 0 {
				t.Fatalf("bridge %+v: want one connection, nothing dropped", in)
			}
		})
	}
}

// TestBridgeRemoteMaximumPacketSize: a message bigger than the Maximum
// Packet Size a 5.0 remote announced is not sent to it [MQTT-3.1.2-24]
// but dropped and counted; the bridge stays connected and later messages
// still go.
func TestBridgeRemoteMaximumPacketSize(t *testing.T) {
	local := startGannet(t, false)
	remote := startGannetWith(t, false, func(o *broker.Options) { o.MaxPacketSize = 200 })
	m := local.bridges(testBridge("rmps", packet.V5, []bridge.Rule{{Pattern: "x/#", QoS: 1}}, remote.Addr))
	waitState(t, m, "rmps", bridge.StateConnected)
	rsub := subscribe(t, remote.Addr, "x/#", 1)
	big := strings.Repeat("b", 500)
	publish(t, local.Addr, "x/big1", big, 1, false)
	publish(t, local.Addr, "x/big0", big, 0, false)
	publish(t, local.Addr, "x/small", "s", 1, false)
	if got := rsub.next(); got.Topic != "x/small" {
		t.Fatalf("got %+v, want only x/small", got)
	}
	rsub.none()
	in := bridgeInfo(m, "rmps")
	if in.Dropped != 2 {
		t.Fatalf("dropped %d, want 2 (the QoS 1 and the QoS 0 message too large)", in.Dropped)
	}
	if in.State != bridge.StateConnected || in.Connects != 1 {
		t.Fatalf("bridge %+v: the remote disconnected it", in)
	}
	publish(t, local.Addr, "x/later", "l", 1, false)
	if got := rsub.next(); got.Topic != "x/later" {
		t.Fatalf("got %+v, want x/later", got)
	}
}

// TestBridgeV31: a bridge at MQTT 3.1 (protocol level 3) to a Gannet
// remote and to Mosquitto: every direction, prefixes, QoS 0/1/2.
func TestBridgeV31(t *testing.T) {
	t.Run("gannet", func(t *testing.T) {
		local, remote := startGannet(t, false), startGannet(t, false)
		cfg := testBridge("v31", packet.V31, directionRules(), remote.Addr)
		cfg.TryPrivate = false
		m := local.bridges(cfg)
		waitState(t, m, "v31", bridge.StateConnected)
		if ci, _, ok := remote.Srv.Client("bridge-v31"); !ok || ci.Version != packet.V31 {
			t.Fatalf("remote sees the bridge as %+v, want protocol level 3", ci)
		}
		checkDirections(t, local.Addr, remote.Addr)
	})
	t.Run("mosquitto", func(t *testing.T) {
		mq := startMosquitto(t, "")
		local := startGannet(t, false)
		m := local.bridges(testBridge("v31", packet.V31, directionRules(), mq.Addr))
		waitState(t, m, "v31", bridge.StateConnected)
		checkDirections(t, local.Addr, mq.Addr)
		mq.stop() // its output is complete once it exited
		// Mosquitto logs the protocol as p1 for 3.1 (p2 for 3.1.1, p5 for 5.0).
		if out := mq.out.String(); !strings.Contains(out, "as bridge-v31 (p1,") {
			t.Fatalf("mosquitto did not see the bridge at MQTT 3.1:\n%s", out)
		}
	})
}

// TestBridgeRemoteCredentials: remote_username and remote_password get the
// bridge into a remote that checks a password file; wrong ones do not,
// and the bridge's state says it is not connected.
func TestBridgeRemoteCredentials(t *testing.T) {
	pf := auth.NewPasswordFile()
	if err := pf.Set("edge", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	for _, ver := range versions() {
		t.Run(ver.name, func(t *testing.T) {
			local := startGannet(t, false)
			remote := startGannetWith(t, false, func(o *broker.Options) { o.Authenticator = pf })
			good := testBridge("good", ver.v, []bridge.Rule{{Pattern: "c/#", Direction: bridge.Both, QoS: 1}}, remote.Addr)
			good.RemoteUsername, good.RemotePassword = "edge", "s3cret"
			bad := good
			bad.Name, bad.RemoteClientID, bad.RemotePassword = "bad", "bridge-bad", "wrong"
			m := local.bridges(good, bad)
			waitState(t, m, "good", bridge.StateConnected)
			if ci, _, ok := remote.Srv.Client("bridge-good"); !ok || !ci.Connected || ci.Username != "edge" {
				t.Fatalf("remote sees %+v, want bridge-good connected as edge", ci)
			}
			lsub := subscribe(t, local.Addr, "c/#", 1)
			ls := subscribe(t, local.Addr, "$SYS/broker/connection/bridge-bad/state", 1)
			time.Sleep(5 * 200 * time.Millisecond) // several attempts of the bad bridge
			in := bridgeInfo(m, "bad")
			if in.State == bridge.StateConnected || in.Connects != 0 {
				t.Fatalf("bridge with a wrong password: %+v, want not connected", in)
			}
			if in.State != bridge.StateConnecting && in.State != bridge.StateDisconnected {
				t.Fatalf("bridge with a wrong password in state %q, want connecting or disconnected", in.State)
			}
			if _, _, ok := remote.Srv.Client("bridge-bad"); ok {
				t.Fatalf("the remote has a session for the refused bridge")
			}
			if got := ls.next(); got.Payload != "0" {
				t.Fatalf("notification %+v, want 0", got)
			}
			// The good one forwards (the remote's publisher needs the
			// credentials too).
			c := connectPahoAuth(t, remote.Addr, "edge", "s3cret")
			if tok := c.Publish("c/1", 1, false, "x"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
				t.Fatalf("publish on the remote: %v", tok.Error())
			}
			if got := lsub.next(); got.Topic != "c/1" {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

// TestBridgeSessionExpiry: with a 5.0 remote, cleansession false and a
// session_expiry, the remote keeps the bridge's session across a restart
// of the bridge (messages published there for an "in" rule meanwhile
// arrive once it is back), and ends it once the expiry passed.
func TestBridgeSessionExpiry(t *testing.T) {
	local, remote := startGannet(t, false), startGannet(t, false)
	cfg := testBridge("se", packet.V5, []bridge.Rule{{Pattern: "s/#", Direction: bridge.In, QoS: 1}}, remote.Addr)
	cfg.CleanSession = false
	cfg.SessionExpiry = 2 * time.Second
	m := local.bridges(cfg)
	waitState(t, m, "se", bridge.StateConnected)
	lsub := subscribe(t, local.Addr, "s/#", 1)
	if err := m.Apply(nil); err != nil { // the bridge stops
		t.Fatal(err)
	}
	eventually(t, "the bridge to leave the remote", func() bool {
		ci, _, ok := remote.Srv.Client("bridge-se")
		return ok && !ci.Connected
	})
	publish(t, remote.Addr, "s/1", "while away", 1, false)
	if ci, _, _ := remote.Srv.Client("bridge-se"); ci.Queued != 1 {
		t.Fatalf("the remote queued %d messages for the bridge, want 1", ci.Queued)
	}
	m = local.bridges(cfg)
	waitState(t, m, "se", bridge.StateConnected)
	if got := lsub.next(); got.Topic != "s/1" || got.Payload != "while away" {
		t.Fatalf("got %+v", got)
	}

	// Beyond the expiry, the remote forgets the session.
	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	eventually(t, "the bridge to leave the remote", func() bool {
		ci, _, ok := remote.Srv.Client("bridge-se")
		return ok && !ci.Connected
	})
	eventually(t, "the session to expire", func() bool {
		_, _, ok := remote.Srv.Client("bridge-se")
		return !ok
	})
	if d := time.Since(stopped); d < cfg.SessionExpiry-100*time.Millisecond {
		t.Fatalf("the remote ended the session after %v, before the expiry %v", d, cfg.SessionExpiry)
	}
}

// connectPahoAuth connects a 3.1.1 client with a user name and password.
func connectPahoAuth(t testing.TB, addr, user, pass string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(nextID("auth")).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetUsername(user).SetPassword(pass)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect as %s to %s: %v", user, addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}
