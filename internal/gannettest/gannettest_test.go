package gannettest_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/gannettest"
	"github.com/gannet-mqtt/gannet/packet"
)

// The harness is for tests only: no non-test file of the module imports it
// or its subpackages (they would link test peers into the gannet binary).
func TestOnlyTestsImport(t *testing.T) {
	const path = "github.com/gannet-mqtt/gannet/internal/gannettest"
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			if p == filepath.Join(root, "internal", "gannettest") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if v, _ := strconv.Unquote(imp.Path.Value); v == path || strings.HasPrefix(v, path+"/") {
				t.Errorf("%s imports %s: only _test.go files may", p, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The harness's own round trip: a raw 3.1.1 subscriber, a raw 5.0
// publisher and a paho.golang subscriber on one broker.
func TestHarness(t *testing.T) {
	b := gannettest.RunBroker(t, gannettest.Options())
	sub, ack := gannettest.ConnectOK(t, b.Addr, gannettest.Connect311(gannettest.ID("sub")))
	if ack.SessionPresent {
		t.Fatalf("clean session CONNACK has Session Present 1 [MQTT-3.2.2-1]")
	}
	sub.Sub(0, packet.Subscription{Filter: "h/#", QoS: 2})
	p5, _ := gannettest.Paho5(t, b.Addr, gannettest.Paho5Connect(gannettest.ID("p5")), nil)
	p5.Sub(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "h/#", QoS: 1}}})
	b.WaitSubscriptions(t, 2)

	pub, _ := gannettest.ConnectOK(t, b.Addr, gannettest.Connect5(gannettest.ID("pub")))
	for qos := range byte(3) {
		if rc := pub.Pub("h/t", "m", qos, false); rc != packet.Success {
			t.Fatalf("QoS %d publish: %s", qos, rc)
		}
		got := sub.ExpectPublish("h/t", "m")
		if got.QoS != qos {
			t.Fatalf("received at QoS %d, want %d", got.QoS, qos)
		}
		sub.Ack(got)
		if m := p5.Next(t); m.Topic != "h/t" || m.QoS != min(qos, 1) {
			t.Fatalf("paho got %q at QoS %d", m.Topic, m.QoS)
		}
	}
	sub.Sync()
	if sub.BytesWritten == 0 || sub.BytesRead == 0 {
		t.Fatalf("byte counters %d written, %d read", sub.BytesWritten, sub.BytesRead)
	}
	pub.Send(&packet.Disconnect{ReasonCode: packet.Success})
	pub.ExpectClosedSilently(gannettest.WaitFor)
	gannettest.ExpectServing(t, b.Addr)
}
