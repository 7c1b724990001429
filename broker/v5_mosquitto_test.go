package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// The 5.0 features as Debian's mosquitto_pub and mosquitto_sub
// (libmosquitto 2.0) use them with -V mqttv5. mosquitto_sub cannot take
// topic aliases from a broker (eclipse-mosquitto/mosquitto#1468), so
// outbound aliases are left to the raw and paho tests.

// v5MosqArgs returns the connection arguments for the test broker.
func v5MosqArgs(t *testing.T, b *testBroker, version string) []string {
	t.Helper()
	host, port := v5HostPort(t, b.Addr)
	return []string{"-h", host, "-p", port, "-V", version}
}

// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17]
// [MQTT-3.3.2-18] [MQTT-3.3.2-20] [MQTT-3.3.4-3]: the properties
// mosquitto_pub sets reach a raw 5.0 subscriber unchanged, and
// mosquitto_sub prints those of a raw 5.0 publisher with its Subscription
// Identifier. mosquitto_pub gets an Assigned Client Identifier for its
// empty one [MQTT-3.2.2-16].
func TestV5MosquittoProperties_MQTT_3_3_2_17(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	raw := v5Client(t, b, "raw")
	raw.v5Sub(0, packet.Subscription{Filter: "mq/pub", QoS: 2})

	v5Run(t, "mosquitto_pub", "", 10*time.Second, append(v5MosqArgs(t, b, "mqttv5"),
		"-t", "mq/pub", "-m", "héllo", "-q", "2",
		"-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "content-type", "text/plain",
		"-D", "publish", "response-topic", "mq/reply",
		"-D", "publish", "correlation-data", "req-42",
		"-D", "publish", "message-expiry-interval", "300",
		"-D", "publish", "user-property", "k", "1",
		"-D", "publish", "user-property", "a", "2",
		"-D", "publish", "user-property", "k", "3")...)
	m := raw.expectPublish("mq/pub", "héllo")
	p := &m.Properties
	if p.PayloadFormat != 1 || p.ContentType != "text/plain" || p.ResponseTopic != "mq/reply" || string(p.CorrelationData) != "req-42" {
		t.Errorf("from mosquitto_pub: PFI %d, Content Type %q, Response Topic %q, Correlation Data %q", p.PayloadFormat, p.ContentType, p.ResponseTopic, p.CorrelationData)
	}
	v5CheckExpiry(t, m, 298, 300)
	if want := v5UserProps("k", "1", "a", "2", "k", "3"); !slices.Equal(p.User, want) {
		t.Errorf("from mosquitto_pub: User Properties %v, want %v", p.User, want)
	}
	raw.ack(m)

	sub := v5Start(t, "mosquitto_sub", "", 15*time.Second, append(v5MosqArgs(t, b, "mqttv5"),
		"-i", "msub", "-t", "mq/sub/#", "-q", "2", "-C", "2", "-W", "10",
		"-D", "subscribe", "subscription-identifier", "7",
		"-F", "%t|%p|%q|F=%F|C=%C|R=%R|D=%D|P=%P|S=%S")...)
	b.waitSubscriptions(t, 2)
	pub := v5Client(t, b, "pub")
	rich := &packet.Publish{Topic: "mq/sub/x", Payload: []byte(`{"v":1}`), QoS: 1, Properties: v5RichProps()}
	pub.v5Publish(rich)
	pub.v5Pub("mq/sub/y", "plain", 2, false)
	out := sub.wait(t)
	want := "mq/sub/x|{\"v\":1}|1|F=1|C=application/json|R=reply/to/me|D=\xde\xad\x00\xbe\xef|P=trace:1 alpha:x trace:2 empty:|S=7\n" +
		"mq/sub/y|plain|2|F=|C=|R=|D=|P=|S=7\n"
	if out != want {
		t.Errorf("mosquitto_sub printed:\n%q\nwant:\n%q", out, want)
	}
}

// [MQTT-3.3.2-12]: mosquitto_pub -D publish topic-alias sends the topic
// once, then an empty topic with the alias; a subscriber gets the full
// topic each time.
func TestV5MosquittoTopicAlias_MQTT_3_3_2_12(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	raw := v5Client(t, b, "raw")
	raw.v5Sub(0, packet.Subscription{Filter: "mq/alias/#", QoS: 1})
	v5Run(t, "mosquitto_pub", "one\ntwo\nthree\n", 10*time.Second, append(v5MosqArgs(t, b, "mqttv5"),
		"-t", "mq/alias/long/topic/name", "-l", "-q", "1", "-D", "publish", "topic-alias", "1")...)
	for _, want := range []string{"one", "two", "three"} {
		raw.ack(raw.expectPublish("mq/alias/long/topic/name", want))
	}
}

// [MQTT-3.1.2-23] [MQTT-4.1.0-2]: a mosquitto_sub session with Session
// Expiry Interval 60 (-c -x 60) gets on its return the QoS 1 message
// published while it was away; one with 1 s (-x 1) has expired by then.
func TestV5MosquittoSessionExpiry_MQTT_3_1_2_23(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	pub := v5Client(t, b, "pub")
	for _, tc := range []struct {
		expiry string
		kept   bool
	}{{"60", true}, {"1", false}} {
		id := "msess-" + tc.expiry
		args := append(v5MosqArgs(t, b, "mqttv5"), "-i", id, "-c", "-x", tc.expiry, "-q", "1", "-t", "mq/sess/"+tc.expiry)
		v5Run(t, "mosquitto_sub", "", 10*time.Second, append(args, "-E")...) // subscribe and leave
		b.waitOffline(t, id)
		pub.v5Pub("mq/sess/"+tc.expiry, "while away", 1, false)
		if !tc.kept {
			b.v5WaitSessionGone(t, id)
		}
		out, err := v5Start(t, "mosquitto_sub", "", 10*time.Second, append(args, "-C", "1", "-W", "2", "-F", "%t %p")...).result()
		switch {
		case tc.kept && (err != nil || out != "mq/sess/60 while away\n"):
			t.Errorf("expiry 60: mosquitto_sub printed %q (%v), want the queued message", out, err)
		case !tc.kept && strings.Contains(out, "while away"):
			t.Errorf("expiry 1: the message outlived the session: %q", out)
		}
	}
}

// [MQTT-3.1.2-8] [MQTT-3.1.3-10]: a mosquitto_sub killed without
// DISCONNECT has its will published after its Will Delay Interval (-D will
// will-delay-interval 1), with its properties.
func TestV5MosquittoWillDelay_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	watch := v5Client(t, b, "watch")
	watch.v5Sub(0, packet.Subscription{Filter: "mq/will", QoS: 1})
	victim := v5Start(t, "mosquitto_sub", "", 20*time.Second, append(v5MosqArgs(t, b, "mqttv5"),
		"-i", "mwill", "-x", "30", "-t", "mq/nothing",
		"--will-topic", "mq/will", "--will-payload", "bye", "--will-qos", "1",
		"-D", "will", "will-delay-interval", "1",
		"-D", "will", "content-type", "text/x",
		"-D", "will", "user-property", "b", "1",
		"-D", "will", "user-property", "a", "2")...)
	b.waitSubscriptions(t, 2)
	victim.kill()
	b.waitOffline(t, "mwill")
	gone := time.Now()
	m := watch.expectPublish("mq/will", "bye")
	if d := time.Since(gone); d < 900*time.Millisecond {
		t.Errorf("will with delay 1 s published after %v", d)
	}
	if m.Properties.ContentType != "text/x" || !slices.Equal(m.Properties.User, v5UserProps("b", "1", "a", "2")) {
		t.Errorf("will properties: Content Type %q, User %v", m.Properties.ContentType, m.Properties.User)
	}
	watch.ack(m)
}

// Messages flow between mosquitto clients of every protocol level through
// the broker: mosquitto_pub at 3.1, 3.1.1 and 5.0 to mosquitto_sub at 5.0
// and 3.1.1, at the publisher's QoS.
func TestV5MosquittoMixedVersions(t *testing.T) {
	t.Parallel()
	b := runBroker(t, testOptions())
	versions := []string{"mqttv31", "mqttv311", "mqttv5"}
	var subs []*v5Command
	for _, sv := range []string{"mqttv5", "mqttv311"} {
		subs = append(subs, v5Start(t, "mosquitto_sub", "", 20*time.Second, append(v5MosqArgs(t, b, sv),
			"-i", "sub-"+sv, "-t", "mq/mix/#", "-q", "2", "-C", fmt.Sprint(3*len(versions)), "-W", "15", "-F", "%q %t %p")...))
	}
	b.waitSubscriptions(t, 2)
	var want []string
	for _, pv := range versions {
		for qos := range 3 {
			topic := fmt.Sprintf("mq/mix/%s/%d", pv, qos)
			v5Run(t, "mosquitto_pub", "", 10*time.Second, append(v5MosqArgs(t, b, pv),
				"-i", "pub-"+pv, "-t", topic, "-m", pv, "-q", fmt.Sprint(qos))...)
			want = append(want, fmt.Sprintf("%d %s %s", qos, topic, pv))
		}
	}
	slices.Sort(want)
	for i, s := range subs {
		// Separate publisher connections: no order between them is promised.
		got := strings.Split(strings.TrimSuffix(s.wait(t), "\n"), "\n")
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("subscriber %d printed:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
