package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
)

// mosquittoClients returns the paths of Debian's mosquitto_pub and
// mosquitto_sub. Without them the test fails under CI (where .ci/run
// installs mosquitto-clients) and is skipped elsewhere.
func mosquittoClients(t *testing.T) (pub, sub string) {
	t.Helper()
	return gannettest.MosquittoClients(t)
}

// mosquitto_sub receives what mosquitto_pub publishes through the broker,
// at QoS 0, 1 and 2, over MQTT 3.1.1 and 3.1; the subscriber prints each
// message's QoS, topic and payload.
func TestMosquittoClients(t *testing.T) {
	t.Parallel()
	pubBin, subBin := mosquittoClients(t)
	for _, version := range []string{"mqttv311", "mqttv31"} {
		for qos := range 3 {
			t.Run(fmt.Sprintf("%s QoS %d", version, qos), func(t *testing.T) {
				t.Parallel()
				b := runBroker(t, testOptions())
				_, port, _ := net.SplitHostPort(b.Addr)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				topic := fmt.Sprintf("mosq/%s/%d", version, qos)
				common := []string{"-h", "127.0.0.1", "-p", port, "-V", version, "-q", fmt.Sprint(qos), "-t", topic}

				sub := exec.CommandContext(ctx, subBin, append(common,
					"-i", fmt.Sprintf("sub-%s-%d", version, qos), "-C", "3", "-W", "10", "-F", "%q %t %p")...)
				var out, subErr bytes.Buffer
				sub.Stdout, sub.Stderr = &out, &subErr
				if err := sub.Start(); err != nil {
					t.Fatal(err)
				}
				defer sub.Process.Kill()
				b.waitSubscriptions(t, 1)

				pub := exec.CommandContext(ctx, pubBin, append(common,
					"-i", fmt.Sprintf("pub-%s-%d", version, qos), "-l")...)
				pub.Stdin = strings.NewReader("one\ntwo\nthree\n")
				if msg, err := pub.CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_pub: %v\n%s", err, msg)
				}
				if err := sub.Wait(); err != nil {
					t.Fatalf("mosquitto_sub: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), subErr.String())
				}
				var want strings.Builder
				for _, m := range []string{"one", "two", "three"} {
					fmt.Fprintf(&want, "%d %s %s\n", qos, topic, m)
				}
				if out.String() != want.String() {
					t.Fatalf("mosquitto_sub printed:\n%s\nwant:\n%s", out.String(), want.String())
				}
			})
		}
	}
}

// A retained message published by mosquitto_pub reaches a later
// mosquitto_sub with the retain flag [MQTT-3.3.1-6] [MQTT-3.3.1-8].
func TestMosquittoRetained(t *testing.T) {
	t.Parallel()
	pubBin, subBin := mosquittoClients(t)
	b := runBroker(t, testOptions())
	_, port, _ := net.SplitHostPort(b.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, pubBin, "-h", "127.0.0.1", "-p", port,
		"-t", "mosq/retained", "-m", "kept", "-r", "-q", "1").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, msg)
	}
	out, err := exec.CommandContext(ctx, subBin, "-h", "127.0.0.1", "-p", port,
		"-t", "mosq/#", "-C", "1", "-W", "10", "-F", "%r %t %p").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", err, out)
	}
	if got := string(out); got != "1 mosq/retained kept\n" {
		t.Fatalf("mosquitto_sub printed %q, want retained message", got)
	}
}
