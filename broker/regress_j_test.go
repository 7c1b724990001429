package broker_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// slowConnectedLog stretches the gap between CONNACK and resume: it
// sleeps on the "client connected" debug line connect logs there.
type slowConnectedLog struct{ armed *atomic.Bool }

func (h slowConnectedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h slowConnectedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "client connected" && h.armed.Load() {
		time.Sleep(300 * time.Millisecond)
	}
	return nil
}
func (h slowConnectedLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowConnectedLog) WithGroup(string) slog.Handler      { return h }

// J: connect attaches the connection and releases session.mu before resume
// re-sends the inflight messages. A delivery in that gap goes out first
// under a fresh identifier, ahead of the older unacknowledged message, and
// resume then sends it a second time with DUP=1.
func TestRegressResumeWindow(t *testing.T) {
	var armed atomic.Bool
	o := testOptions()
	o.Logger = slog.New(slowConnectedLog{&armed})
	b := runBroker(t, o)
	cp := &packet.Connect{Version: packet.V311, ClientID: "rv-j", KeepAlive: 60}
	s1, _ := connectOK(t, b.Addr, cp)
	s1.sub("rv/j", 1)
	b.Publish("rv/j", []byte("old"), 1, false)
	expectPacket[*packet.Publish](s1) // never acknowledged
	s1.nc.Close()
	b.waitOffline(t, "rv-j")
	armed.Store(true)
	go func() {
		time.Sleep(150 * time.Millisecond) // inside the gap
		b.Publish("rv/j", []byte("new"), 1, false)
	}()
	s2, _ := connectOK(t, b.Addr, cp)
	for {
		p, err := s2.read(500 * time.Millisecond)
		if err != nil {
			break
		}
		t.Logf("after CONNACK: %s", describe(p))
	}
}
