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
// PUBREL, PUBCOMP) is done. One goroutine drives both connections, so the
// broker is never asked for two things at once: what is measured is the
// broker's latency unloaded, from the write of PUBLISH to its arrival.
func (e *engine) pingPong(ctx context.Context, deadline <-chan time.Time) {
	if len(e.pubs) != 1 || len(e.subs) != 1 || !e.pubs[0].ready.Load() || !e.subs[0].ready.Load() {
		return
	}
	pub, sub := e.pubs[0], e.subs[0]
	cfg := &e.cfg
	v := cfg.Version
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
	// Time-outs make a lost message an error, not a hang.
	limit := cfg.ConnectTimeout
	fail := func(c *client, what string, err error) {
		if !c.closing.Load() {
			c.fail(errorKind(what, err))
		}
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
		pub.nc.SetDeadline(sent.Add(limit))
		sub.nc.SetDeadline(sent.Add(limit))
		if _, err := pub.nc.Write(msg); err != nil {
			fail(pub, "write", err)
			return
		}
		pub.sent.Add(1)
		// The subscriber's side.
		p, err := sub.next()
		if err != nil {
			fail(sub, "read", err)
			return
		}
		got, ok := p.(*packet.Publish)
		if !ok {
			sub.fail("protocol: expected PUBLISH, got " + p.Type().String())
			return
		}
		samples = append(samples, time.Since(sent).Nanoseconds())
		sub.received.Add(1)
		sub.lastRecv.Store(time.Now().UnixNano())
		switch got.QoS {
		case 1:
			out, _ = (&packet.Puback{PacketID: got.PacketID}).Append(out[:0], v)
		case 2:
			out, _ = (&packet.Pubrec{PacketID: got.PacketID}).Append(out[:0], v)
		}
		if got.QoS > 0 {
			if _, err := sub.nc.Write(out); err != nil {
				fail(sub, "write", err)
				return
			}
		}
		if got.QoS == 2 {
			if err := sub.expect(packet.PUBREL); err != nil {
				fail(sub, "read", err)
				return
			}
			out, _ = (&packet.Pubcomp{PacketID: got.PacketID}).Append(out[:0], v)
			if _, err := sub.nc.Write(out); err != nil {
				fail(sub, "write", err)
				return
			}
		}
		// The publisher's side.
		switch cfg.QoS {
		case 1:
			if err := pub.expect(packet.PUBACK); err != nil {
				fail(pub, "read", err)
				return
			}
		case 2:
			if err := pub.expect(packet.PUBREC); err != nil {
				fail(pub, "read", err)
				return
			}
			out, _ = (&packet.Pubrel{PacketID: id}).Append(out[:0], v)
			if _, err := pub.nc.Write(out); err != nil {
				fail(pub, "write", err)
				return
			}
			if err := pub.expect(packet.PUBCOMP); err != nil {
				fail(pub, "read", err)
				return
			}
		}
		if cfg.QoS > 0 {
			ackLat = append(ackLat, time.Since(sent).Nanoseconds())
			pub.acked.Add(1)
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
