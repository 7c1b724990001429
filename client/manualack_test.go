package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// With ManualAck a QoS 1 message stays unacknowledged (inflight at the
// server) after its handler returned, until Message.Ack.
func TestManualAck(t *testing.T) {
	g := runGannet(t, nil)
	in := newInbox()
	o := options(g.url(), packet.V5)
	o.ClientID = "manual"
	o.ManualAck = true
	o.OnMessage = in.handler
	c := dial(t, o)
	if _, err := c.Subscribe(testCtx(t), client.Subscription{Filter: "m/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	p := dial(t, options(g.url(), packet.V5))
	if err := p.Publish(testCtx(t), "m/1", []byte("x"), client.PublishOptions{QoS: 1}); err != nil {
		t.Fatal(err)
	}
	m := in.expect(t, "m/1", "x")
	time.Sleep(100 * time.Millisecond)
	if n := inflightOf(g, "manual"); n != 1 {
		t.Fatalf("inflight %d before Ack, want 1", n)
	}
	m.Ack()
	m.Ack() // a second call does nothing
	deadline := time.Now().Add(waitFor)
	for {
		if inflightOf(g, "manual") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still inflight after Ack")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PublishAsync queues messages in call order, returns at once, and each
// wait reports the acknowledgement.
func TestPublishAsync(t *testing.T) {
	g := runGannet(t, nil)
	in := newInbox()
	so := options(g.url(), packet.V5)
	so.OnMessage = in.handler
	s := dial(t, so)
	if _, err := s.Subscribe(testCtx(t), client.Subscription{Filter: "a/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	p := dial(t, options(g.url(), packet.V311))
	var waits []func(context.Context) error
	for i := range 100 {
		w, err := p.PublishAsync("a/x", []byte(fmt.Sprint(i)), client.PublishOptions{QoS: byte(1 + i%2)})
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		if err := w(testCtx(t)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i := range 100 {
		in.expect(t, "a/x", fmt.Sprint(i))
	}
	if _, err := p.PublishAsync("a/x", nil, client.PublishOptions{QoS: 0}); err == nil {
		t.Fatal("PublishAsync took QoS 0")
	}
	if _, err := p.PublishAsync("a/#", nil, client.PublishOptions{QoS: 1}); err == nil {
		t.Fatal("PublishAsync took a wildcard topic")
	}
}

// inflightOf is the number of messages the broker awaits acknowledgement
// of from client id.
func inflightOf(g *gannet, id string) int {
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	ci, _, _ := srv.Client(id)
	return ci.Inflight
}
