package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/listener"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store/pebble"
)

// Issue 11, "mosquitto.conf, password and ACL files: Mosquitto's meaning":
// each test loads a mosquitto.conf as a user moving from Mosquitto 2.0
// would, runs the broker it becomes on 127.0.0.1, and checks over real
// sockets that clients see what Mosquitto would show them. Where the
// behaviour was in doubt it was checked against mosquitto 2.0.11 (Debian).

// dropInBroker is a broker built from a mosquitto.conf.
type dropInBroker struct {
	srv   *broker.Server
	ls    []*listener.Listener
	addrs []string // of the listeners, in file order
	file  *File
	stop  func() // closes the broker, its listeners and its store; idempotent
}

// runMosquittoConf loads conf (a mosquitto.conf), builds it and serves every
// listener on a free loopback port. Files the configuration names are
// written by the caller beforehand.
func runMosquittoConf(t *testing.T, conf string) *dropInBroker {
	t.Helper()
	f, err := Parse("mosquitto.conf", []byte(conf))
	if err != nil {
		t.Fatalf("mosquitto.conf:\n%v", err)
	}
	if _, format := f.Source(); format != "mosquitto" {
		t.Fatalf("read as %s, not as a mosquitto.conf", format)
	}
	return runFile(t, f)
}

func runFile(t *testing.T, f *File) *dropInBroker {
	t.Helper()
	rt, err := f.build(io.Discard)
	if err != nil {
		t.Fatalf("build:\n%v", err)
	}
	o := rt.BrokerOptions
	o.Logger = gannettest.Logger()
	o.SysInterval = 0
	var st *pebble.Store
	if rt.Store.Type == "pebble" {
		opts := pebble.DefaultOptions()
		opts.Logger = o.Logger
		if st, err = pebble.Open(rt.Store.DataDir, opts); err != nil {
			t.Fatal(err)
		}
		o.Store = st
	}
	srv, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	b := &dropInBroker{srv: srv, file: f}
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			srv.Close()
			for _, l := range b.ls {
				l.Close()
			}
			if st != nil {
				st.Close()
			}
		})
	}
	t.Cleanup(b.stop)
	for _, rl := range rt.Listeners {
		cfg := rl.Config
		cfg.Address = "127.0.0.1:0"
		cfg.Logger = o.Logger
		l, err := listener.Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b.ls = append(b.ls, l)
		b.addrs = append(b.addrs, l.Addr().String())
		go srv.ServeListener(l, rl.ListenerOptions)
	}
	return b
}

// mqttClient is a raw MQTT client (a gannettest.Conn): it writes packets
// and reads what the broker sends, with a deadline on every wait.
type mqttClient struct {
	*gannettest.Conn
	t  *testing.T
	nc net.Conn
}

const dropInWait = 3 * time.Second

func dialMQTT(t *testing.T, addr string, ver byte) *mqttClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, dropInWait)
	if err != nil {
		t.Fatal(err)
	}
	return newMQTTClient(t, nc, ver)
}

func dialMQTTTLS(t *testing.T, addr string, ver byte, cfg *tls.Config) (*mqttClient, error) {
	t.Helper()
	d := &net.Dialer{Timeout: dropInWait}
	nc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if err := nc.Handshake(); err != nil {
		nc.Close()
		return nil, err
	}
	return newMQTTClient(t, nc, ver), nil
}

func newMQTTClient(t *testing.T, nc net.Conn, ver byte) *mqttClient {
	c := &mqttClient{Conn: gannettest.NewConn(t, nc, ver), t: t, nc: nc}
	c.Timeout = dropInWait
	return c
}

func (c *mqttClient) send(ps ...packet.Packet)     { c.t.Helper(); c.Send(ps...) }
func (c *mqttClient) read() (packet.Packet, error) { return c.Read(dropInWait) }
func expectMQTT[T packet.Packet](c *mqttClient) T {
	c.t.Helper()
	return gannettest.ExpectPacket[T](c.Conn)
}
func describePacket(p packet.Packet) string { return gannettest.Describe(p) }
func (c *mqttClient) id() uint16            { return c.NextID() }

// sync sends PINGREQ and expects PINGRESP next: everything the broker had
// for this client before was received (and failed the test if unexpected).
func (c *mqttClient) sync() {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	expectMQTT[*packet.Pingresp](c)
}

// connect sends CONNECT and returns the CONNACK.
func (c *mqttClient) connect(p *packet.Connect) *packet.Connack {
	c.t.Helper()
	p.Version = c.Version
	if p.KeepAlive == 0 {
		p.KeepAlive = 60
	}
	c.send(p)
	return expectMQTT[*packet.Connack](c)
}

func connectAs(id, user, pass string) *packet.Connect {
	p := &packet.Connect{ClientID: id, CleanStart: true}
	if user != "" {
		p.UsernameFlag, p.Username = true, user
	}
	if pass != "" {
		p.PasswordFlag, p.Password = true, []byte(pass)
	}
	return p
}

// mqttOK connects a clean 3.1.1 client and fails unless accepted.
func mqttOK(t *testing.T, addr string, ver byte, p *packet.Connect) *mqttClient {
	t.Helper()
	c := dialMQTT(t, addr, ver)
	if ack := c.connect(p); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK for %q: %s", p.ClientID, ack.ReasonCode)
	}
	return c
}

func (c *mqttClient) subscribe(filter string, qos byte) packet.ReasonCode {
	c.t.Helper()
	return c.Subscribe(0, packet.Subscription{Filter: filter, QoS: qos})[0]
}

// publish sends a PUBLISH and completes the publisher's side of its flow,
// returning the reason code of the PUBACK or PUBREC.
func (c *mqttClient) publish(topic, payload string, qos byte, retain bool) packet.ReasonCode {
	c.t.Helper()
	return c.Pub(topic, payload, qos, retain)
}

// expectPublish reads a PUBLISH on topic with payload, and acknowledges it.
func (c *mqttClient) expectPublish(topic, payload string) *packet.Publish {
	c.t.Helper()
	p := c.ExpectPublish(topic, payload)
	c.Ack(p)
	return p
}

// expectClosed reads until the broker closes the connection.
func (c *mqttClient) expectClosed() {
	c.t.Helper()
	for {
		if _, err := c.read(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatal("connection not closed")
			}
			return
		}
	}
}

// --- Bullet: Mosquitto 2.0's defaults for absent options -----------------

// Options absent from a mosquitto.conf take Mosquitto 2.0's defaults, so
// the wire looks the same: Receive Maximum 20 in a 5.0 CONNACK and no
// Maximum Packet Size; 20 messages in flight to a client; 1000 queued.
// Gannet's own defaults stay for YAML files.
func TestDropInMosquittoDefaults(t *testing.T) {
	b := runMosquittoConf(t, "listener 1883\nallow_anonymous true\n")
	c := dialMQTT(t, b.addrs[0], packet.V5)
	ack := c.connect(connectAs("v5", "", ""))
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %s", ack.ReasonCode)
	}
	pr := &ack.Properties
	if !pr.Has(packet.PropReceiveMaximum) || pr.ReceiveMaximum != 20 {
		t.Errorf("CONNACK Receive Maximum present %v value %d, want 20 (max_inflight_messages)", pr.Has(packet.PropReceiveMaximum), pr.ReceiveMaximum)
	}
	if pr.Has(packet.PropMaximumPacketSize) {
		t.Errorf("CONNACK announces Maximum Packet Size %d; Mosquitto announces none without max_packet_size", pr.MaximumPacketSize)
	}
	if !pr.Has(packet.PropTopicAliasMaximum) || pr.TopicAliasMaximum != 10 {
		t.Errorf("CONNACK Topic Alias Maximum %d, want 10 (max_topic_alias)", pr.TopicAliasMaximum)
	}

	// 20 unacknowledged QoS 1 messages in flight to a client, no more.
	sub := mqttOK(t, b.addrs[0], packet.V311, connectAs("sub", "", ""))
	if rc := sub.subscribe("t", 1); rc != packet.GrantedQoS1 {
		t.Fatalf("SUBACK %s", rc)
	}
	pub := mqttOK(t, b.addrs[0], packet.V311, connectAs("pub", "", ""))
	for i := range 25 {
		pub.publish("t", fmt.Sprint(i), 1, false)
	}
	for range 20 {
		expectMQTT[*packet.Publish](sub) // not acknowledged
	}
	sub.sync() // nothing beyond the 20

	// The translated limits, one by one.
	f := b.file
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"max_inflight_messages", f.Limits.MaxInflight, 20},
		{"receive maximum", f.MQTT.ReceiveMaximum, 20},
		{"max_queued_messages", f.Limits.MaxQueued, 1000},
		{"queue_qos0_messages", f.Limits.QueueQoS0, false},
		{"max_packet_size", f.Limits.MaxPacketSize, Size(broker.NoMaxPacketSize)},
		{"message_size_limit", f.Limits.MaxPayloadSize, Size(0)},
		{"max_keepalive", f.Limits.MaxKeepAlive, 65535 * time.Second},
		{"max_connections", f.Limits.MaxConnections, 0},
		{"memory_limit", f.Limits.MemoryLimit, Size(0)},
		{"persistent_client_expiration", f.Limits.MaxSessionExpiry, time.Duration(0)},
		{"max_qos", f.MQTT.MaximumQoS, 2},
		{"retain_available", f.MQTT.RetainAvailable, true},
		{"max_topic_alias", f.MQTT.TopicAliasMaximum, 10},
		{"allow_zero_length_clientid", f.MQTT.AllowEmptyClientID, true},
		{"upgrade_outgoing_qos", f.MQTT.UpgradeOutgoingQoS, false},
		{"sys_interval", f.Sys.Interval, 10 * time.Second},
		{"check_retain_source", f.Auth.CheckRetainSource, true},
		{"persistence", f.Store.Type, "memory"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want Mosquitto's default %v", c.name, c.got, c.want)
		}
	}
	// Gannet's own defaults stay for YAML.
	y := mustLoad(t, "gannet.yaml", "listeners:\n  - address: 127.0.0.1:1883\n")
	if y.Limits.MaxInflight != Default().Limits.MaxInflight || y.Limits.MaxQueued != Default().Limits.MaxQueued ||
		y.Limits.MaxPacketSize != Default().Limits.MaxPacketSize {
		t.Errorf("YAML limits %+v, want Gannet's defaults", y.Limits)
	}
}

// --- Bullet: allow_anonymous false without a password file ---------------

// allow_anonymous false with no password file (or with an authentication
// plugin Gannet does not load) refuses every client, as Mosquitto does
// (checked with mosquitto 2.0.11: CONNACK 5 for all).
func TestDropInAllowAnonymousFalseWithoutPasswordFile(t *testing.T) {
	for _, conf := range []string{
		"listener 1883\nallow_anonymous false\n",
		"listener 1883\n", // allow_anonymous defaults to false with a listener
		"listener 1883\nauth_plugin /usr/lib/mosquitto-go-auth.so\nauth_opt_backends files\nallow_anonymous false\n",
	} {
		b := runMosquittoConf(t, conf)
		for _, p := range []*packet.Connect{
			connectAs("u1", "bob", "secret"),
			connectAs("u2", "bob", ""),
			connectAs("u3", "", ""),
		} {
			c := dialMQTT(t, b.addrs[0], packet.V311)
			if ack := c.connect(p); ack.ReasonCode != packet.NotAuthorized {
				t.Errorf("%q: user %q: CONNACK %s, want not authorized (5)", conf, p.Username, ack.ReasonCode)
			}
			c5 := dialMQTT(t, b.addrs[0], packet.V5)
			p.Version = packet.V5
			if ack := c5.connect(p); ack.ReasonCode != packet.NotAuthorized {
				t.Errorf("%q: 5.0 user %q: CONNACK %s, want 0x87", conf, p.Username, ack.ReasonCode)
			}
		}
	}
	// With a plugin and anonymous access on, anonymous clients get in, but
	// a user name the plugin would have checked does not.
	b := runMosquittoConf(t, "listener 1883\nplugin /usr/lib/x.so\nallow_anonymous true\n")
	mqttOK(t, b.addrs[0], packet.V311, connectAs("anon", "", ""))
	if ack := dialMQTT(t, b.addrs[0], packet.V311).connect(connectAs("named", "bob", "x")); ack.ReasonCode != packet.NotAuthorized {
		t.Errorf("named client with an unloaded plugin: CONNACK %s, want not authorized", ack.ReasonCode)
	}
	// Without a plugin and with anonymous access on, Mosquitto admits any
	// user name: so does Gannet.
	b = runMosquittoConf(t, "listener 1883\nallow_anonymous true\n")
	mqttOK(t, b.addrs[0], packet.V311, connectAs("named", "bob", "x"))
}

// --- Bullet: allow_zero_length_clientid false -----------------------------

// allow_zero_length_clientid false refuses an empty client identifier:
// 3.1.1 return code 2, 5.0 0x85.
func TestDropInZeroLengthClientID(t *testing.T) {
	b := runMosquittoConf(t, "listener 1883\nallow_anonymous true\nallow_zero_length_clientid false\n")
	if ack := dialMQTT(t, b.addrs[0], packet.V311).connect(connectAs("", "", "")); ack.ReasonCode != packet.ClientIdentifierNotValid {
		t.Errorf("3.1.1: CONNACK %s, want identifier rejected (2)", ack.ReasonCode)
	}
	if ack := dialMQTT(t, b.addrs[0], packet.V5).connect(connectAs("", "", "")); ack.ReasonCode != packet.ClientIdentifierNotValid {
		t.Errorf("5.0: CONNACK %s, want 0x85", ack.ReasonCode)
	}
	mqttOK(t, b.addrs[0], packet.V311, connectAs("named", "", ""))
	// Mosquitto's default assigns one.
	b = runMosquittoConf(t, "listener 1883\nallow_anonymous true\n")
	mqttOK(t, b.addrs[0], packet.V311, connectAs("", "", ""))
}

// --- Bullet: acl_file, Mosquitto's meaning --------------------------------

// A subscription is never refused by the ACL; read rules apply to each
// message at delivery: a subscriber on "#" granted sensors/a/# receives
// that part only, live and retained (checked with mosquitto 2.0.11). An ACL
// file with only comments grants nothing and refuses no subscription.
func TestDropInACLReadAtDelivery(t *testing.T) {
	dir := t.TempDir()
	acl := writeFile(t, dir, "acl", "user alice\ntopic read sensors/a/#\nuser pub\ntopic write #\npattern deny sensors/a/secret\npattern deny sensors/a/%u-only\n")
	b := runMosquittoConf(t, "listener 1883\nallow_anonymous true\nacl_file "+acl+"\n")
	pub := mqttOK(t, b.addrs[0], packet.V311, connectAs("pub", "pub", ""))
	pub.publish("sensors/b/r", "retained hidden", 1, true)
	pub.publish("sensors/a/r", "retained shown", 1, true)
	for _, ver := range []byte{packet.V311, packet.V5} {
		alice := mqttOK(t, b.addrs[0], ver, connectAs(fmt.Sprint("alice", ver), "alice", ""))
		if rc := alice.subscribe("#", 1); rc != packet.GrantedQoS1 {
			t.Fatalf("SUBSCRIBE # (version %d): %s, want granted QoS 1", ver, rc)
		}
		alice.expectPublish("sensors/a/r", "retained shown")
		alice.sync()
		pub.publish("sensors/b/x", "hidden", 1, false)
		pub.publish("elsewhere", "hidden", 0, false)
		pub.publish("sensors/a/x", "shown", 1, false)
		alice.expectPublish("sensors/a/x", "shown")
		// alice's own grant wins over a deny pattern, as in Mosquitto
		// (checked with mosquitto 2.0.11).
		pub.publish("sensors/a/secret", "granted to alice", 1, false)
		alice.expectPublish("sensors/a/secret", "granted to alice")
		alice.sync()
		alice.send(&packet.Disconnect{})
	}

	empty := writeFile(t, dir, "empty.acl", "# no rules yet\n\n  # none\n")
	b = runMosquittoConf(t, "listener 1883\nallow_anonymous true\nacl_file "+empty+"\n")
	sub := mqttOK(t, b.addrs[0], packet.V311, connectAs("s", "alice", ""))
	if rc := sub.subscribe("t/#", 1); rc != packet.GrantedQoS1 {
		t.Fatalf("SUBSCRIBE with a comments-only ACL: %s, want granted", rc)
	}
	pub = mqttOK(t, b.addrs[0], packet.V311, connectAs("p", "alice", ""))
	pub.publish("t/1", "x", 1, false) // acknowledged, not delivered: no write access
	sub.sync()
}

// check_retain_source (default true): before a retained message is
// delivered, its publisher's write access is checked against the current
// ACL; false delivers it regardless.
func TestDropInCheckRetainSource(t *testing.T) {
	for _, check := range []bool{true, false} {
		dir := t.TempDir()
		acl := writeFile(t, dir, "acl", "user w\ntopic write r/#\nuser s\ntopic read #\n")
		conf := "listener 1883\nallow_anonymous true\nacl_file " + acl + "\n"
		if !check {
			conf += "check_retain_source false\n"
		}
		b := runMosquittoConf(t, conf)
		w := mqttOK(t, b.addrs[0], packet.V311, connectAs("w", "w", ""))
		w.publish("r/1", "from w", 1, true)

		// The operator takes w's write access away and reloads.
		writeFile(t, dir, "acl", "user s\ntopic read #\n")
		rt, err := b.file.build(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.srv.Reload(rt.BrokerOptions); err != nil {
			t.Fatal(err)
		}
		s := mqttOK(t, b.addrs[0], packet.V311, connectAs("s", "s", ""))
		if rc := s.subscribe("r/#", 1); rc != packet.GrantedQoS1 {
			t.Fatalf("SUBACK %s", rc)
		}
		if !check {
			s.expectPublish("r/1", "from w")
		}
		s.sync()
	}
}

// --- Bullet: password_file ------------------------------------------------

// A malformed line of the password file is skipped with a warning naming
// the line; the broker starts and the other users log in. A zero-length
// password is treated as absent (mosquitto 2.0.11 refuses it even for a
// user whose hash is of the empty string).
func TestDropInPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := testPasswordFile(t, dir) // alice:wonderland
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	emptyHash, err := auth.Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}.Hash(nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := writeFile(t, dir, "passwd", "bob\n"+string(data)+"carol:\nnot a line at all\nerin:"+emptyHash+"\n")
	f, err := Parse("mosquitto.conf", []byte("listener 1883\npassword_file "+pw+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if _, err := f.build(&logs); err != nil {
		t.Fatalf("a malformed line is fatal: %v", err)
	}
	for _, line := range []string{pw + ":1:", pw + ":3:", pw + ":4:"} {
		if !strings.Contains(logs.String(), line) || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("no warning naming %s in:\n%s", line, logs.String())
		}
	}
	b := runFile(t, f)
	mqttOK(t, b.addrs[0], packet.V311, connectAs("a", "alice", "wonderland"))
	// A wrong password gets "not authorized", as from mosquitto 2.0.11
	// (3.1.1: 5, 5.0: 0x87), not "bad user name or password".
	for _, ver := range []byte{packet.V311, packet.V5} {
		if ack := dialMQTT(t, b.addrs[0], ver).connect(connectAs("w", "alice", "wrong")); ack.ReasonCode != packet.NotAuthorized {
			t.Errorf("version %d, wrong password: CONNACK %s, want not authorized", ver, ack.ReasonCode)
		}
	}
	for _, p := range []*packet.Connect{connectAs("b", "bob", ""), connectAs("c", "carol", "x")} {
		if ack := dialMQTT(t, b.addrs[0], packet.V311).connect(p); ack.ReasonCode == packet.Success {
			t.Errorf("user %q of a skipped line got in", p.Username)
		}
	}
	// Password flag set, zero-length password: no password, even for erin
	// whose hash is of the empty string.
	for _, user := range []string{"alice", "erin"} {
		p := connectAs("z", user, "")
		p.PasswordFlag = true
		if ack := dialMQTT(t, b.addrs[0], packet.V311).connect(p); ack.ReasonCode == packet.Success {
			t.Errorf("%s: a zero-length password got in", user)
		}
	}
}

// --- Bullet: message_size_limit and max_packet_size ------------------------

// message_size_limit limits the payload: a larger message is dropped, the
// publisher's QoS flow completes (5.0: 0x83, as Mosquitto; 0x95 is for the
// packet size) and it stays connected. max_packet_size accepts values from
// 20.
func TestDropInMessageSizeLimit(t *testing.T) {
	b := runMosquittoConf(t, "listener 1883\nallow_anonymous true\nmessage_size_limit 10\n")
	sub := mqttOK(t, b.addrs[0], packet.V311, connectAs("sub", "", ""))
	sub.subscribe("t", 2)
	for _, ver := range []byte{packet.V311, packet.V5} {
		pub := mqttOK(t, b.addrs[0], ver, connectAs(fmt.Sprint("pub", ver), "", ""))
		for qos := byte(0); qos <= 2; qos++ {
			rc := pub.publish("t", "0123456789abc", qos, false) // 13 bytes
			if ver == packet.V5 && qos > 0 && rc != packet.ImplementationSpecificError {
				t.Errorf("5.0 QoS %d: %s, want 0x83", qos, rc)
			}
			if ver == packet.V311 && rc != packet.Success {
				t.Errorf("3.1.1 QoS %d: %s", qos, rc)
			}
		}
		pub.publish("t", "0123456789", 1, false) // 10 bytes: delivered
		sub.expectPublish("t", "0123456789")
		sub.sync()
		pub.sync() // still connected
	}

	f := mustLoad(t, "mosquitto.conf", "listener 1883\nallow_anonymous true\nmax_packet_size 20\n")
	if f.Limits.MaxPacketSize != 20 {
		t.Errorf("max_packet_size 20 read as %d", f.Limits.MaxPacketSize)
	}
	if _, err := f.build(io.Discard); err != nil {
		t.Errorf("max_packet_size 20: %v", err)
	}
	b = runFile(t, f)
	c := dialMQTT(t, b.addrs[0], packet.V5)
	ack := c.connect(connectAs("x", "", ""))
	if ack.ReasonCode != packet.Success || ack.Properties.MaximumPacketSize != 20 {
		t.Errorf("CONNACK %s, Maximum Packet Size %d, want 20", ack.ReasonCode, ack.Properties.MaximumPacketSize)
	}
}

// --- Bullet: maximum_qos, upgrade_outgoing_qos -----------------------------

// maximum_qos is accepted as an alias of max_qos; upgrade_outgoing_qos
// delivers at the subscription's QoS.
func TestDropInMaximumQoSAndUpgrade(t *testing.T) {
	f := mustLoad(t, "mosquitto.conf", "listener 1883\nmaximum_qos 1\n")
	if f.MQTT.MaximumQoS != 1 || len(f.Warnings()) != 0 {
		t.Errorf("maximum_qos 1: maximum QoS %d, warnings %v", f.MQTT.MaximumQoS, f.Warnings())
	}
	b := runMosquittoConf(t, "listener 1883\nallow_anonymous true\nupgrade_outgoing_qos true\n")
	sub := mqttOK(t, b.addrs[0], packet.V311, connectAs("sub", "", ""))
	sub.subscribe("t", 2)
	pub := mqttOK(t, b.addrs[0], packet.V311, connectAs("pub", "", ""))
	pub.publish("t", "x", 0, false)
	if p := sub.expectPublish("t", "x"); p.QoS != 2 {
		t.Errorf("delivered at QoS %d, want 2 (upgrade_outgoing_qos)", p.QoS)
	}
	b = runMosquittoConf(t, "listener 1883\nallow_anonymous true\n")
	sub = mqttOK(t, b.addrs[0], packet.V311, connectAs("sub", "", ""))
	sub.subscribe("t", 2)
	pub = mqttOK(t, b.addrs[0], packet.V311, connectAs("pub", "", ""))
	pub.publish("t", "x", 0, false)
	if p := sub.expectPublish("t", "x"); p.QoS != 0 {
		t.Errorf("delivered at QoS %d, want 0", p.QoS)
	}
}

// --- Bullet: persistence_file ----------------------------------------------

// persistence_file is honoured: the store is the directory
// persistence_location/persistence_file.gannet, so removing it resets the
// state as removing mosquitto.db does for Mosquitto.
func TestDropInPersistenceFile(t *testing.T) {
	dir := t.TempDir()
	f := mustLoad(t, "mosquitto.conf", "listener 1883\npersistence true\npersistence_location "+dir+"/\npersistence_file broker.db\n")
	if want := filepath.Join(dir, "broker.db.gannet"); f.Store.Type != "pebble" || f.Store.DataDir != want {
		t.Errorf("store %s in %q, want pebble in %q", f.Store.Type, f.Store.DataDir, want)
	}
	f = mustLoad(t, "mosquitto.conf", "listener 1883\npersistence true\npersistence_location "+dir+"\n")
	if want := filepath.Join(dir, "mosquitto.db.gannet"); f.Store.DataDir != want {
		t.Errorf("default persistence_file: store in %q, want %q", f.Store.DataDir, want)
	}

	// A retained message survives a restart in that store, and removing
	// the store resets the state.
	conf := "listener 1883\nallow_anonymous true\npersistence true\npersistence_location " + dir + "\npersistence_file state.db\n"
	b := runMosquittoConf(t, conf)
	mqttOK(t, b.addrs[0], packet.V311, connectAs("p", "", "")).publish("kept", "across restarts", 1, true)
	b.stop()
	if _, err := os.Stat(filepath.Join(dir, "state.db.gannet")); err != nil {
		t.Fatalf("no store where the documentation says: %v", err)
	}
	b = runMosquittoConf(t, conf)
	s := mqttOK(t, b.addrs[0], packet.V311, connectAs("s", "", ""))
	s.subscribe("kept", 1)
	s.expectPublish("kept", "across restarts")
	b.stop()
	if err := os.RemoveAll(filepath.Join(dir, "state.db.gannet")); err != nil {
		t.Fatal(err)
	}
	b = runMosquittoConf(t, conf)
	s = mqttOK(t, b.addrs[0], packet.V311, connectAs("s", "", ""))
	s.subscribe("kept", 1)
	s.sync() // reset: nothing retained
}

// --- Bullet: TLS --------------------------------------------------------

// dropInPKI is a CA with a server and a client certificate, in files.
type dropInPKI struct {
	dir                 string
	caFile, crlFile     string
	certFile, keyFile   string
	roots               *x509.CertPool
	client, otherClient tls.Certificate
	caCert              *x509.Certificate
	caKey               *ecdsa.PrivateKey
}

func newDropInPKI(t *testing.T) *dropInPKI {
	t.Helper()
	p := &dropInPKI{dir: t.TempDir()}
	key := dropInKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Drop-in CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.caCert)
	p.caFile = writeFile(t, p.dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	srvPEM, srvKey := p.issue(t, 2, pkix.Name{CommonName: "localhost"}, false)
	p.certFile = writeFile(t, p.dir, "server.pem", string(srvPEM))
	p.keyFile = writeFile(t, p.dir, "server.key", string(srvKey))
	p.client = p.keyPair(t, 3, pkix.Name{CommonName: "alice", Organization: []string{"Example"}, Country: []string{"NL"}})
	p.otherClient = p.keyPair(t, 4, pkix.Name{CommonName: "mallory"})
	return p
}

func dropInKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *dropInPKI) issue(t *testing.T, serial int64, subject pkix.Name, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key := dropInKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (p *dropInPKI) keyPair(t *testing.T, serial int64, subject pkix.Name) tls.Certificate {
	t.Helper()
	c, k := p.issue(t, serial, subject, true)
	kp, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// writeCRL writes a CRL revoking the certificates with the given serials.
func (p *dropInPKI) writeCRL(t *testing.T, number int64, serials ...int64) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, p.caCert, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.crlFile = writeFile(t, p.dir, "crl.pem", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})))
}

func (p *dropInPKI) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: p.roots, ServerName: "localhost", Certificates: certs, MaxVersion: tls.VersionTLS12}
}

// use_identity_as_username takes the certificate's CN as user name (the
// ACL sees it) and does not consult the password file; use_subject_as_username
// takes the full subject; without require_certificate no certificate is
// asked for, and every client is refused at CONNACK (3.1.1: 4, 5.0: 0x86),
// as by Mosquitto.
func TestDropInTLSIdentityAsUsername(t *testing.T) {
	p := newDropInPKI(t)
	pw := testPasswordFile(t, p.dir) // alice:wonderland; alice's certificate has no password
	acl := writeFile(t, p.dir, "acl", "user alice\ntopic readwrite alice/#\nuser CN=alice,O=Example,C=NL\ntopic readwrite subject/#\n")
	tlsConf := func(extra string) string {
		return fmt.Sprintf("password_file %s\nacl_file %s\nlistener 8883\ncafile %s\ncertfile %s\nkeyfile %s\n%s",
			pw, acl, p.caFile, p.certFile, p.keyFile, extra)
	}

	b := runMosquittoConf(t, tlsConf("require_certificate true\nuse_identity_as_username true\n"))
	c, err := dialMQTTTLS(t, b.addrs[0], packet.V311, p.clientConfig(p.client))
	if err != nil {
		t.Fatal(err)
	}
	if ack := c.connect(connectAs("cert", "someone-else", "wrong")); ack.ReasonCode != packet.Success {
		t.Fatalf("client certificate CN alice: CONNACK %s; the password file must not be consulted", ack.ReasonCode)
	}
	if rc := c.subscribe("alice/#", 1); rc != packet.GrantedQoS1 {
		t.Fatalf("SUBACK %s", rc)
	}
	c.publish("alice/x", "as alice", 0, false) // the ACL knows the client as alice
	c.expectPublish("alice/x", "as alice")

	b = runMosquittoConf(t, tlsConf("require_certificate true\nuse_subject_as_username true\n"))
	c, err = dialMQTTTLS(t, b.addrs[0], packet.V311, p.clientConfig(p.client))
	if err != nil {
		t.Fatal(err)
	}
	if ack := c.connect(connectAs("subj", "", "")); ack.ReasonCode != packet.Success {
		t.Fatalf("use_subject_as_username: CONNACK %s", ack.ReasonCode)
	}
	c.subscribe("subject/#", 1)
	c.publish("subject/x", "as the subject", 0, false)
	c.expectPublish("subject/x", "as the subject")

	// Without require_certificate: TLS works (cafile completes the chain),
	// but no client has a certificate, so none gets in, even with a good
	// password.
	b = runMosquittoConf(t, tlsConf("use_identity_as_username true\n"))
	for _, ver := range []byte{packet.V311, packet.V5} {
		c, err = dialMQTTTLS(t, b.addrs[0], ver, p.clientConfig())
		if err != nil {
			t.Fatalf("handshake without require_certificate: %v", err)
		}
		want := packet.BadUserNameOrPassword
		if ack := c.connect(connectAs("nocert", "alice", "wonderland")); ack.ReasonCode != want {
			t.Errorf("version %d without a certificate: CONNACK %s, want %s", ver, ack.ReasonCode, want)
		}
	}
}

// crlfile is applied: a revoked client certificate fails the handshake,
// and the CRL is re-read on reload (SIGHUP).
func TestDropInTLSCRLFile(t *testing.T) {
	p := newDropInPKI(t)
	p.writeCRL(t, 1, 4) // mallory
	b := runMosquittoConf(t, fmt.Sprintf("listener 8883\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n",
		p.caFile, p.certFile, p.keyFile, p.crlFile))
	c, err := dialMQTTTLS(t, b.addrs[0], packet.V311, p.clientConfig(p.client))
	if err != nil {
		t.Fatalf("unrevoked certificate: %v", err)
	}
	if ack := c.connect(connectAs("a", "", "")); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %s", ack.ReasonCode)
	}
	if _, err := dialMQTTTLS(t, b.addrs[0], packet.V311, p.clientConfig(p.otherClient)); err == nil {
		t.Fatal("revoked certificate passed the handshake")
	}
	p.writeCRL(t, 2, 3, 4) // alice too
	for _, l := range b.ls {
		if err := l.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dialMQTTTLS(t, b.addrs[0], packet.V311, p.clientConfig(p.client)); err == nil {
		t.Fatal("certificate revoked by the reloaded CRL passed the handshake")
	}
}

// --- Bullet: mount_point ------------------------------------------------------

// mount_point per listener prefixes every topic of its clients (publishes,
// subscriptions, wills) and hides everything else; they see their topics
// without the prefix. The ACL decides on the prefixed topics, as Mosquitto
// 2.0 does.
func TestDropInMountPoint(t *testing.T) {
	dir := t.TempDir()
	acl := writeFile(t, dir, "acl", "user tenant\ntopic readwrite site-a/#\nuser root\ntopic readwrite #\n")
	b := runMosquittoConf(t, "per_listener_settings false\nallow_anonymous true\nacl_file "+acl+"\nlistener 1883\nmount_point site-a/\nlistener 1884\n")
	mounted, plain := b.addrs[0], b.addrs[1]

	root := mqttOK(t, plain, packet.V311, connectAs("root", "root", ""))
	root.subscribe("#", 1)
	rootPub := mqttOK(t, plain, packet.V311, connectAs("rootpub", "root", ""))
	for _, ver := range []byte{packet.V311, packet.V5} {
		id := fmt.Sprint("tenant", ver)
		tn := mqttOK(t, mounted, ver, connectAs(id, "tenant", ""))
		if rc := tn.subscribe("#", 1); rc != packet.GrantedQoS1 {
			t.Fatalf("SUBACK %s", rc)
		}
		// The tenant's publish lands under the prefix ...
		tn.publish("t/1", "from tenant", 0, false)
		root.expectPublish("site-a/t/1", "from tenant")
		tn.expectPublish("t/1", "from tenant")
		// ... the rest of the broker is hidden from it ...
		rootPub.publish("site-b/x", "other site", 1, false)
		rootPub.publish("top", "top level", 1, false)
		root.expectPublish("site-b/x", "other site")
		root.expectPublish("top", "top level")
		// ... and what is under the prefix reaches it without the prefix.
		rootPub.publish("site-a/t/2", "to tenant", 1, false)
		root.expectPublish("site-a/t/2", "to tenant")
		tn.expectPublish("t/2", "to tenant")
		tn.sync()
		tn.send(&packet.Disconnect{})
		root.sync()
	}

	// Its will is published under the prefix too, and retained messages
	// come without it.
	w := dialMQTT(t, mounted, packet.V311)
	wp := connectAs("w", "tenant", "")
	wp.WillFlag, wp.Will.Topic, wp.Will.Payload = true, "status", []byte("gone")
	if ack := w.connect(wp); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %s", ack.ReasonCode)
	}
	w.nc.Close()
	root.expectPublish("site-a/status", "gone")
	rootPub.publish("site-a/t/3", "kept", 1, true)
	root.expectPublish("site-a/t/3", "kept")
	late := mqttOK(t, mounted, packet.V311, connectAs("late", "tenant", ""))
	late.subscribe("t/#", 1)
	late.expectPublish("t/3", "kept")
	late.sync()
}
