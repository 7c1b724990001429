package client_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// PublishPending queues messages in call order as PublishAsync does; each
// Pending's Wait reports the acknowledgement, also when called after it
// came and more than once. Messages of every size around the client's and
// the broker's inline buffer for small messages arrive intact.
func TestPublishPending(t *testing.T) {
	g := runGannet(t, nil)
	in := newInbox()
	so := options(g.url(), packet.V5)
	so.OnMessage = in.handler
	s := dial(t, so)
	if _, err := s.Subscribe(testCtx(t), client.Subscription{Filter: "a/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	p := dial(t, options(g.url(), packet.V5))
	sizes := []int{0, 1, 64, 124, 125, 126, 127, 128, 129, 1000, 70000}
	var pend []*client.Pending
	var payloads [][]byte
	for i := range 100 {
		payload := bytes.Repeat([]byte{byte('a' + i%26)}, sizes[i%len(sizes)])
		x, err := p.PublishPending("a/x", payload, client.PublishOptions{QoS: byte(1 + i%2)})
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, x)
		payloads = append(payloads, payload)
	}
	for i, x := range pend {
		if err := x.Wait(testCtx(t)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := x.Wait(testCtx(t)); err != nil {
			t.Fatalf("message %d, second wait: %v", i, err)
		}
	}
	for i := range 100 {
		in.expect(t, "a/x", string(payloads[i]))
	}
	// A Wait whose context ends first returns the context's error.
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	x, err := p.PublishPending("a/y", []byte("late"), client.PublishOptions{QoS: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Wait(ctx); err == nil {
		// Acknowledged before Wait looked: also right.
		t.Log("acknowledged before the wait")
	}
	if err := x.Wait(testCtx(t)); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	if _, err := p.PublishPending("a/x", nil, client.PublishOptions{QoS: 0}); err == nil {
		t.Fatal("PublishPending took QoS 0")
	}
	if _, err := p.PublishPending("a/#", nil, client.PublishOptions{QoS: 1}); err == nil {
		t.Fatal("PublishPending took a wildcard topic")
	}
}
