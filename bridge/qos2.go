package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/client"
)

// A QoS 2 message crosses the bridge as one exchange relayed step by step,
// with the packet identifier of the side it comes from used on the side it
// goes to, so that each step is durable on one side before the next one is
// taken on the other, and a crash of the local broker leaves every exchange
// at a step both sides can resume from [MQTT-4.4.0-1]:
//
//	source                    bridge                     target
//	PUBLISH id  ───────────────────────────────────────▶ PUBLISH id (DUP if the source's was)
//	PUBREC id   ◀─────────────────────────────────────── PUBREC id
//	PUBREL id   ───────────────────────────────────────▶ PUBREL id
//	PUBCOMP id  ◀─────────────────────────────────────── PUBCOMP id
//
// Outgoing, the source is the local broker: the bridge's local session
// holds the message and its identifier in the store; the bridge answers
// PUBREC only once the remote did, and the local broker syncs that state
// before it sends PUBREL, which alone lets the bridge send PUBREL to the
// remote. After kill -9 the local broker sends again PUBLISH (DUP, same
// identifier) for an exchange the remote had not acknowledged, and the
// remote, which still holds the identifier, does not deliver it again
// [MQTT-4.3.3-10]; it sends PUBREL for one it had, and the bridge resumes
// it with PUBREL to the remote (client.ResumeRelease), never a new PUBLISH
// [MQTT-4.3.3-6].
//
// Incoming, the source is the remote and the target the local broker,
// which stores the inbound identifier before its PUBREC: the remote's
// PUBLISH sent again with DUP after a restart is recognised by the local
// broker and not delivered twice.

// qos2Relay passes PUBREL on from the source to the target and PUBCOMP
// back, in the order the source released its exchanges.
type qos2Relay struct {
	dir    string                                        // "outgoing" or "incoming", for logs
	target func(context.Context) (*client.Client, error) // the client of the target side, waiting for one
	log    *slog.Logger

	mu   sync.Mutex
	held map[uint16]*client.Exchange // by source identifier; nil: nothing to relay, complete at once

	relq  chan relItem // from the source's read loop, in order
	compq chan relItem // released, awaiting the target's PUBCOMP, in order
}

// relItem is one PUBREL of the source.
type relItem struct {
	id       uint16
	complete func() // PUBCOMP to the source
	x        *client.Exchange
}

func newQoS2Relay(dir string, target func(context.Context) (*client.Client, error), log *slog.Logger) *qos2Relay {
	return &qos2Relay{dir: dir, target: target, log: log, held: make(map[uint16]*client.Exchange),
		relq: make(chan relItem, 2*localReceiveMaximum), compq: make(chan relItem, 2*localReceiveMaximum)}
}

// hold records the exchange on the target of the source's exchange id,
// before the bridge answers the source's PUBLISH with PUBREC. x nil: the
// message did not go to the target as QoS 2 (dropped, or downgraded), and
// the source's PUBREL is completed at once.
func (r *qos2Relay) hold(id uint16, x *client.Exchange) {
	r.mu.Lock()
	r.held[id] = x
	r.mu.Unlock()
}

// release is the source client's OnRelease: it runs on its read loop.
func (r *qos2Relay) release(ctx context.Context, id uint16, complete func()) {
	select {
	case r.relq <- relItem{id: id, complete: complete}:
	case <-ctx.Done():
	}
}

// run relays releases until ctx ends; it returns when both its loops have.
func (r *qos2Relay) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.releaseLoop(ctx) }()
	go func() { defer wg.Done(); r.completeLoop(ctx) }()
	wg.Wait()
}

// releaseLoop sends PUBREL to the target for each release of the source,
// in order.
func (r *qos2Relay) releaseLoop(ctx context.Context) {
	for {
		var it relItem
		select {
		case it = <-r.relq:
		case <-ctx.Done():
			return
		}
		r.mu.Lock()
		x, known := r.held[it.id]
		r.mu.Unlock()
		switch {
		case known && x == nil:
			r.forget(it.id, nil)
			it.complete()
			continue
		case known:
			x.Release()
		default:
			// Not seen in this run: the exchange was at PUBREC on the
			// target before a restart. Resume it there at PUBREL.
			var err error
			if x, err = r.resume(ctx, it.id); err != nil {
				return // ctx ended
			}
			r.hold(it.id, x)
		}
		it.x = x
		select {
		case r.compq <- it:
		case <-ctx.Done():
			return
		}
	}
}

// resume sends PUBREL for id on the target, waiting for a target client
// and for the identifier to be free there. It fails only when ctx ends.
func (r *qos2Relay) resume(ctx context.Context, id uint16) (*client.Exchange, error) {
	for {
		c, err := r.target(ctx)
		if err != nil {
			return nil, err
		}
		x, err := c.ResumeRelease(id)
		if err == nil {
			return x, nil
		}
		r.log.Debug("cannot resume a QoS 2 exchange yet; retrying", "direction", r.dir, "packet_id", id, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// completeLoop waits for the target's PUBCOMP of each released exchange,
// in order, and then completes it on the source.
func (r *qos2Relay) completeLoop(ctx context.Context) {
	for {
		var it relItem
		select {
		case it = <-r.compq:
		case <-ctx.Done():
			return
		}
		for {
			err := it.x.Wait(ctx)
			var re *client.ReasonError
			if err == nil || errors.As(err, &re) {
				// A failure code (5.0: Packet Identifier Not Found) means
				// the target had completed it before: complete it here.
				break
			}
			if ctx.Err() != nil {
				return // not completed: the source releases it again
			}
			// The target's client ended (start_type once or lazy): resume
			// the exchange on the next one.
			x, rerr := r.resume(ctx, it.id)
			if rerr != nil {
				return
			}
			it.x = x
		}
		r.forget(it.id, it.x)
		it.complete()
	}
}

// forget drops the record of id when it still is x.
func (r *qos2Relay) forget(id uint16, x *client.Exchange) {
	r.mu.Lock()
	if r.held[id] == x {
		delete(r.held, id)
	}
	r.mu.Unlock()
}
