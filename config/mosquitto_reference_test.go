package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// The same mosquitto.conf, password and ACL files run by Debian's mosquitto
// and by Gannet must show clients the same thing: each scenario below
// records what a client sees (CONNACK and SUBACK codes, CONNACK properties,
// which messages arrive) from both brokers and compares. Without mosquitto
// the test is skipped, or fails when CI is set.

// runRealMosquitto starts mosquitto with conf, whose listener lines are
// replaced by one on a free loopback port, and kills it when the test ends.
func runRealMosquitto(t *testing.T, conf string) string {
	t.Helper()
	return gannettest.RunMosquittoConf(t, func(port int) string {
		var lines []string
		for _, line := range strings.Split(conf, "\n") {
			if strings.HasPrefix(line, "listener ") {
				line = fmt.Sprintf("listener %d 127.0.0.1", port)
			}
			lines = append(lines, line)
		}
		return strings.Join(lines, "\n")
	})
}

// connackOf returns what a client connecting with p sees.
func connackOf(t *testing.T, addr string, ver byte, p *packet.Connect) string {
	t.Helper()
	c := dialMQTT(t, addr, ver)
	ack := c.connect(p)
	return fmt.Sprintf("v%d %q/%q: %s", ver, p.ClientID, p.Username, ack.ReasonCode)
}

// received returns the topics and payloads c receives until a PINGRESP.
func (c *mqttClient) received() []string {
	c.t.Helper()
	c.send(&packet.Pingreq{})
	var got []string
	for {
		p, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for PINGRESP: %v", err)
		}
		switch p := p.(type) {
		case *packet.Pingresp:
			return got
		case *packet.Publish:
			got = append(got, p.Topic+"="+string(p.Payload))
			if p.QoS == 1 {
				c.send(&packet.Puback{PacketID: p.PacketID})
			}
		}
	}
}

func TestMosquittoReference(t *testing.T) {
	dir := t.TempDir()
	// Hashes made by mosquitto_passwd (auth's test data): alice's password
	// is "secret", erin's is empty.
	mpw := writeFile(t, dir, "mosquitto.passwd", "bob\nnot a line\n"+testdataLine(t, 0)+"\n"+testdataLine(t, 4)+"\n")
	acl := writeFile(t, dir, "acl", "user alice\ntopic read sensors/a/#\ntopic write sensors/#\npattern deny sensors/a/secret\n")

	for _, sc := range []struct {
		name string
		conf string
		run  func(t *testing.T, addr string) []string
	}{
		{"allow_anonymous false, no password file", "listener 1883\nallow_anonymous false\n",
			func(t *testing.T, addr string) []string {
				var out []string
				for _, ver := range []byte{packet.V311, packet.V5} {
					out = append(out,
						connackOf(t, addr, ver, connectAs("a", "", "")),
						connackOf(t, addr, ver, connectAs("b", "bob", "x")))
				}
				return out
			}},
		{"password file: bad lines skipped, wrong and empty passwords", "listener 1883\nallow_anonymous false\npassword_file " + mpw + "\n",
			func(t *testing.T, addr string) []string {
				var out []string
				for _, ver := range []byte{packet.V311, packet.V5} {
					empty := connectAs("e", "erin", "")
					empty.PasswordFlag = true
					out = append(out,
						connackOf(t, addr, ver, connectAs("ok", "alice", "secret")),
						connackOf(t, addr, ver, connectAs("w", "alice", "wrong")),
						connackOf(t, addr, ver, empty),
						connackOf(t, addr, ver, connectAs("b", "bob", "x")))
				}
				return out
			}},
		{"allow_zero_length_clientid false", "listener 1883\nallow_anonymous true\nallow_zero_length_clientid false\n",
			func(t *testing.T, addr string) []string {
				// 5.0: mosquitto 2.0.11 answers 0x80, Gannet 0x85 (Client
				// Identifier not valid), the code MQTT 5.0 gives for it.
				return []string{connackOf(t, addr, packet.V311, connectAs("", "", ""))}
			}},
		{"defaults on the wire", "listener 1883\nallow_anonymous true\n",
			func(t *testing.T, addr string) []string {
				c := dialMQTT(t, addr, packet.V5)
				ack := c.connect(connectAs("v5", "", ""))
				pr := &ack.Properties
				k0 := dialMQTT(t, addr, packet.V5)
				k0.send(&packet.Connect{Version: packet.V5, ClientID: "k0", CleanStart: true}) // keep alive 0
				ka := expectMQTT[*packet.Connack](k0)
				return []string{
					fmt.Sprintf("receive maximum %v %d, maximum packet size %v, topic alias maximum %d, server keep alive %v",
						pr.Has(packet.PropReceiveMaximum), pr.ReceiveMaximum, pr.Has(packet.PropMaximumPacketSize), pr.TopicAliasMaximum,
						pr.Has(packet.PropServerKeepAlive)),
					fmt.Sprintf("keep alive 0: server keep alive %v %d", ka.Properties.Has(packet.PropServerKeepAlive), ka.Properties.ServerKeepAlive),
				}
			}},
		{"acl_file: read per message", "listener 1883\nallow_anonymous true\nacl_file " + acl + "\n",
			func(t *testing.T, addr string) []string {
				sub := mqttOK(t, addr, packet.V311, connectAs("sub", "alice", ""))
				rc := sub.subscribe("#", 1)
				pub := mqttOK(t, addr, packet.V311, connectAs("pub", "alice", ""))
				pub.publish("sensors/b/x", "hidden", 1, false)
				pub.publish("sensors/a/secret", "user grant beats deny pattern", 1, false)
				pub.publish("sensors/a/x", "shown", 1, false)
				pub.publish("elsewhere", "not writable", 1, false)
				return append([]string{fmt.Sprintf("SUBACK %s", rc)}, sub.received()...)
			}},
		{"max_queued_messages for an offline session", "listener 1883\nallow_anonymous true\n",
			func(t *testing.T, addr string) []string {
				p := connectAs("qsub", "", "")
				p.CleanStart = false
				sub := mqttOK(t, addr, packet.V311, p)
				sub.subscribe("q", 1)
				sub.send(&packet.Disconnect{})
				sub.expectClosed()
				pub := mqttOK(t, addr, packet.V311, connectAs("qpub", "", ""))
				for i := range 1100 {
					pub.publish("q", fmt.Sprint(i), 1, false)
				}
				sub = mqttOK(t, addr, packet.V311, p)
				n := 0
				for {
					got := sub.received()
					if len(got) == 0 {
						break
					}
					n += len(got)
				}
				return []string{fmt.Sprintf("%d messages kept", n)}
			}},
		{"message_size_limit", "listener 1883\nallow_anonymous true\nmessage_size_limit 10\n",
			func(t *testing.T, addr string) []string {
				sub := mqttOK(t, addr, packet.V311, connectAs("sub", "", ""))
				sub.subscribe("t", 1)
				// 5.0: mosquitto 2.0.11 acknowledges with 0x95, which MQTT
				// 5.0 does not allow in PUBACK; Gannet with 0x83. Over
				// 3.1.1 both complete the flow alike.
				pub := mqttOK(t, addr, packet.V311, connectAs("pub", "", ""))
				rc := pub.publish("t", "0123456789abc", 1, false)
				pub.publish("t", "short", 1, false)
				return append([]string{fmt.Sprintf("too large: %s", rc)}, sub.received()...)
			}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			want := sc.run(t, runRealMosquitto(t, sc.conf))
			b := runMosquittoConf(t, sc.conf)
			got := sc.run(t, b.addrs[0])
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("Gannet:\n\t%s\nmosquitto:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
		})
	}
}

// testdataLine returns line i of auth's mosquitto_passwd test file.
func testdataLine(t *testing.T, i int) string {
	t.Helper()
	data, err := os.ReadFile("../auth/testdata/mosquitto.passwd")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")[i]
}
