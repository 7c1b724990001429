package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mosquittoClients returns the paths of Debian's mosquitto_pub and
// mosquitto_sub. Without them the test fails under CI (where .ci/run
// installs mosquitto-clients) and is skipped elsewhere.
func mosquittoClients(t *testing.T) (pub, sub string) {
	t.Helper()
	pub, err1 := exec.LookPath("mosquitto_pub")
	sub, err2 := exec.LookPath("mosquitto_sub")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mosquitto_pub or mosquitto_sub missing under CI: install mosquitto-clients")
		}
		t.Skip("mosquitto_pub or mosquitto_sub not installed (Debian package mosquitto-clients)")
	}
	return pub, sub
}

// mosquitto_sub on one node receives, in order and at its QoS, what
// mosquitto_pub publishes on another: over 3.1.1 at QoS 1 and 5.0 at QoS 2
// (stored in JetStream before the publisher's acknowledgement).
func TestMosquittoAcrossNodes(t *testing.T) {
	pubBin, subBin := mosquittoClients(t)
	nodes := three(t)
	_, pubPort, _ := net.SplitHostPort(nodes[0].addr)
	_, subPort, _ := net.SplitHostPort(nodes[1].addr)
	for _, tc := range []struct {
		version string
		qos     int
	}{{"mqttv311", 1}, {"mqttv5", 2}} {
		t.Run(fmt.Sprintf("%s QoS %d", tc.version, tc.qos), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			topic := fmt.Sprintf("mosq/%s/%d", tc.version, tc.qos)
			common := []string{"-h", "127.0.0.1", "-V", tc.version, "-q", fmt.Sprint(tc.qos), "-t", topic}
			sub := exec.CommandContext(ctx, subBin, append(common, "-p", subPort,
				"-i", "mosq-sub-"+tc.version, "-C", "3", "-W", "15", "-F", "%q %t %p")...)
			var out, subErr bytes.Buffer
			sub.Stdout, sub.Stderr = &out, &subErr
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			defer sub.Process.Kill()
			// The subscription reaches the publisher's node through NATS.
			deadline := time.Now().Add(waitFor)
			for nodes[0].cl.Interest(topic) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("mosquitto_sub's subscription never reached the publisher's node\n%s", subErr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			pub := exec.CommandContext(ctx, pubBin, append(common, "-p", pubPort,
				"-i", "mosq-pub-"+tc.version, "-l")...)
			pub.Stdin = strings.NewReader("one\ntwo\nthree\n")
			if msg, err := pub.CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub: %v\n%s", err, msg)
			}
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), subErr.String())
			}
			var want strings.Builder
			for _, m := range []string{"one", "two", "three"} {
				fmt.Fprintf(&want, "%d %s %s\n", tc.qos, topic, m)
			}
			if out.String() != want.String() {
				t.Fatalf("mosquitto_sub printed:\n%s\nwant:\n%s", out.String(), want.String())
			}
			// Read through the stream's leader, which may have just moved
			// to a replica that holds the message but has not applied it
			// yet: it serves it within moments.
			deadline = time.Now().Add(5 * time.Second)
			for {
				m, err := nodes[2].cl.StoredMessage(topic)
				if err == nil && string(m.Payload) == "three" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the last message is not in JetStream: %v (got %+v)", err, m)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
