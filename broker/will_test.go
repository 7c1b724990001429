package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// withWill returns a clean-session CONNECT for id carrying a will.
func withWill(id, topic, payload string, qos byte, retain bool) *packet.Connect {
	p := connectPacket(id)
	p.WillFlag = true
	p.Will = packet.Will{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	return p
}

// [MQTT-3.1.2-8] [MQTT-3.1.2-16] [MQTT-3.1.2-17] [MQTT-3.1.2-24]: the will
// is published when the connection ends other than by DISCONNECT: keep-alive
// timeout, network error, protocol violation, takeover. It goes out with its
// QoS, and with its retain flag: a retained will is stored and reaches
// later subscribers with RETAIN 1; live subscribers see RETAIN 0
// [MQTT-3.3.1-9].
func TestWillPublished(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	for i, tc := range []struct {
		name   string
		qos    byte
		retain bool
		end    func(t *testing.T, c *rawClient, id string)
	}{
		{"keep-alive timeout", 1, true, func(t *testing.T, c *rawClient, _ string) {
			start := time.Now()
			c.expectClosedSilently(3 * time.Second)
			if d := time.Since(start); d < time.Second {
				t.Errorf("keep alive 1 s: dropped after %v", d)
			}
		}},
		{"network error", 2, false, func(t *testing.T, c *rawClient, _ string) {
			c.nc.Close()
		}},
		{"malformed packet", 0, true, func(t *testing.T, c *rawClient, _ string) {
			c.write(hx("36 05 00 01 61 00 01")) // PUBLISH with QoS 3 [MQTT-3.3.1-4]
			c.expectClosedSilently(time.Second)
		}},
		{"second CONNECT", 2, true, func(t *testing.T, c *rawClient, id string) {
			c.send(connectPacket(id)) // [MQTT-3.1.0-2]
			c.expectClosedSilently(time.Second)
		}},
		{"takeover", 1, false, func(t *testing.T, c *rawClient, id string) {
			client(t, b, id) // [MQTT-3.1.4-2]
			c.expectClosedSilently(time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("will%d", i)
			topic := "will/" + id
			live := client(t, b, "live-"+id)
			live.sub(topic, 2)
			cp := withWill(id, topic, "gone", tc.qos, tc.retain)
			cp.KeepAlive = 0
			if tc.name == "keep-alive timeout" {
				cp.KeepAlive = 1
			}
			c, _ := connectOK(t, b.Addr, cp)
			tc.end(t, c, id)

			p := live.expectPublish(topic, "gone")
			if p.QoS != tc.qos || p.Retain {
				t.Errorf("will delivered as %s, want QoS %d, RETAIN 0", describe(p), tc.qos)
			}
			live.ack(p)
			live.sync() // published once

			late := client(t, b, "late-"+id)
			late.sub(topic, 2)
			if tc.retain {
				p := late.expectPublish(topic, "gone")
				if !p.Retain || p.QoS != tc.qos {
					t.Errorf("retained will: %s, want RETAIN 1 at QoS %d", describe(p), tc.qos)
				}
				late.ack(p)
			}
			late.sync()
		})
	}
}

// [MQTT-3.14.4-3] [MQTT-3.1.2-10]: DISCONNECT discards the will.
func TestWillNotOnDisconnect(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	live := client(t, b, "live")
	live.sub("will/#", 1)
	c, _ := connectOK(t, b.Addr, withWill("polite", "will/polite", "gone", 1, true))
	c.send(&packet.Disconnect{})
	c.expectClosedSilently(time.Second)
	b.waitOffline(t, "polite")
	eventually(t, "connection to end", func() bool { return b.ConnCount() == 1 })
	time.Sleep(quiet) // a will would be published right after the connection ends
	live.sync()
	late := client(t, b, "late")
	late.sub("will/#", 1)
	late.sync()
}

// [MQTT-3.1.2-12]: a connection without a will publishes nothing when it
// ends abnormally.
func TestNoWillNothingPublished(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	live := client(t, b, "live")
	live.sub("#", 1)
	c := client(t, b, "nowill")
	c.nc.Close()
	b.waitOffline(t, "nowill")
	eventually(t, "connection to end", func() bool { return b.ConnCount() == 1 })
	time.Sleep(quiet)
	live.sync()
}
