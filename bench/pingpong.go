package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// pingPong runs the PingPong scenario: one publisher and one subscriber of
// its topic; each message is published only once the previous one has
// arrived and every acknowledgement of both flows (PUBACK, or PUBREC,
// PUBREL, PUBCOMP) is done, so the broker is never asked for two things at
// once: what is measured is its latency at rest, from the write of PUBLISH
// to its arrival at the subscriber. The subscriber's side runs on a
// goroutine of its own, as a broker may deliver a QoS 2 message on PUBLISH
// or only on PUBREL (Mosquitto does the latter).
func (e *engine) pingPong(ctx context.Context, deadline <-chan time.Time) {
	if len(e.pubs) != 1 || len(e.subs) != 1 || !e.pubs[0].ready.Load() || !e.subs[0].ready.Load() {
		return
	}
	pub, sub := e.pubs[0], e.subs[0]
	cfg := &e.cfg
	v := cfg.Version
	arrived := make(chan int64, 1)      // the subscriber's receive time of each PUBLISH
	completed := make(chan struct{}, 1) // QoS 2: the subscriber's PUBCOMP is written
	stop := make(chan struct{})
	subDone := make(chan struct{})
	defer func() {
		close(stop)
		sub.closing.Store(true) // teardown ends the subscriber's read
		sub.nc.SetReadDeadline(time.Now())
		<-subDone
		sub.closing.Store(false)
	}()
	go func() {
		defer close(subDone)
		var out []byte
		for {
			p, err := sub.next()
			if err != nil {
				if !sub.closing.Load() {
					sub.fail(errorKind("read", err))
				}
				return
			}
			now := time.Now().UnixNano()
			out = out[:0]
			switch p := p.(type) {
			case *packet.Publish:
				switch p.QoS {
				case 1:
					out, _ = (&packet.Puback{PacketID: p.PacketID}).Append(out, v)
				case 2:
					out, _ = (&packet.Pubrec{PacketID: p.PacketID}).Append(out, v)
				}
				sub.received.Add(1)
				sub.lastRecv.Store(now)
				select {
				case arrived <- now:
				case <-stop:
					return
				}
			case *packet.Pubrel:
				out, _ = (&packet.Pubcomp{PacketID: p.PacketID}).Append(out, v)
			default:
				sub.fail("protocol: unexpected " + p.Type().String())
				return
			}
			if len(out) > 0 {
				if _, err := sub.nc.Write(out); err != nil {
					sub.fail(errorKind("write", err))
					return
				}
			}
			if _, ok := p.(*packet.Pubrel); ok {
				completed <- struct{}{}
			}
		}
	}()

	msg := append([]byte(nil), pub.tmpl...)
	var out []byte
	samples := make([]int64, 0, 1024)
	ackLat := make([]int64, 0, 1024)
	flush := func() {
		e.latency.recordAll(0, samples)
		e.ackLatency.recordAll(0, ackLat)
		samples, ackLat = samples[:0], ackLat[:0]
	}
	defer flush()
	fail := func(err error) {
		if !pub.closing.Load() {
			pub.fail(errorKind("read", err))
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// wait waits for the subscriber; a lost message is an error, not a hang.
	wait := func(ch <-chan struct{}, at <-chan int64) (int64, bool) {
		timer.Reset(cfg.ConnectTimeout)
		select {
		case t := <-at:
			return t, true
		case <-ch:
			return 0, true
		case <-subDone:
		case <-timer.C:
			e.errs.add("subscriber: message not received within the connect timeout")
		case <-ctx.Done():
		}
		return 0, false
	}
	for n := 0; cfg.Count == 0 || n < cfg.Count; n++ {
		if n&63 == 0 {
			select {
			case <-deadline:
				return
			case <-ctx.Done():
				return
			default:
			}
			if len(samples) > 512 {
				flush()
			}
		}
		id := uint16(n%65535 + 1)
		if cfg.QoS > 0 {
			binary.BigEndian.PutUint16(msg[pub.idOff:], id)
		}
		sent := time.Now()
		if pub.tsOff >= 0 {
			binary.BigEndian.PutUint64(msg[pub.tsOff:], uint64(sent.UnixNano()))
		}
		pub.nc.SetDeadline(sent.Add(cfg.ConnectTimeout))
		if _, err := pub.nc.Write(msg); err != nil {
			fail(err)
			return
		}
		pub.sent.Add(1)
		switch cfg.QoS {
		case 1:
			if err := pub.expect(packet.PUBACK); err != nil {
				fail(err)
				return
			}
		case 2:
			if err := pub.expect(packet.PUBREC); err != nil {
				fail(err)
				return
			}
			out, _ = (&packet.Pubrel{PacketID: id}).Append(out[:0], v)
			if _, err := pub.nc.Write(out); err != nil {
				fail(err)
				return
			}
			if err := pub.expect(packet.PUBCOMP); err != nil {
				fail(err)
				return
			}
		}
		if cfg.QoS > 0 {
			ackLat = append(ackLat, time.Since(sent).Nanoseconds())
			pub.acked.Add(1)
		}
		at, ok := wait(nil, arrived)
		if !ok {
			return
		}
		samples = append(samples, at-sent.UnixNano())
		if cfg.QoS == 2 {
			if _, ok := wait(completed, nil); !ok {
				return
			}
		}
	}
}

// next reads the next packet, skipping PINGRESP.
func (c *client) next() (packet.Packet, error) {
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, err
		}
		if p.Type() != packet.PINGRESP {
			return p, nil
		}
	}
}

// expect reads the next packet and checks its type.
func (c *client) expect(t packet.Type) error {
	p, err := c.next()
	if err != nil {
		return err
	}
	if p.Type() != t {
		return errors.New("protocol: expected " + t.String() + ", got " + p.Type().String())
	}
	return nil
}
