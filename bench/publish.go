package bench

import (
	"encoding/binary"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
)

// writeBatch is how many bytes of PUBLISH packets a publisher hands the
// kernel per write when it may send that many at once.
const writeBatch = 64 << 10

// prepare encodes the publisher's PUBLISH once: publish then copies it per
// message and patches the packet identifier and the timestamp in place.
func (c *client) prepare() error {
	cfg := &c.e.cfg
	p := &packet.Publish{QoS: cfg.QoS, Topic: expand(cfg.Topic, c.index), Payload: make([]byte, cfg.PayloadSize)}
	if cfg.QoS > 0 {
		p.PacketID = 1
		c.win = newWindow(cfg.Window)
	}
	tmpl, err := p.Append(nil, cfg.Version)
	if err != nil {
		return err
	}
	_, hl, err := packet.Header(tmpl, 0)
	if err != nil {
		return err
	}
	c.tmpl = tmpl
	c.idOff = hl + 2 + len(p.Topic)
	c.tsOff = -1
	if cfg.PayloadSize >= 8 {
		c.tsOff = len(tmpl) - cfg.PayloadSize
	}
	return nil
}

// publish sends messages until count (0: no limit) is reached or stop is
// closed, at rate messages per second from start (0: as fast as the broker
// takes them), keeping at most the window's size of QoS 1 or 2 publishes
// unacknowledged (as fast as possible, it refills the window a quarter at a
// time). Messages go out in batches of up to writeBatch bytes that share
// one timestamp, taken just before their write.
func (c *client) publish(start time.Time, rate float64, count int, stop <-chan struct{}) {
	size := len(c.tmpl)
	perBatch := max(1, writeBatch/size)
	buf := make([]byte, 0, perBatch*size)
	var ids []uint16
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sleep := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-timer.C:
			return true
		case <-stop:
			return false
		}
	}
	sent := 0
	for count == 0 || sent < count {
		select {
		case <-stop:
			return
		default:
		}
		k := perBatch
		if count > 0 {
			k = min(k, count-sent)
		}
		if rate > 0 {
			due := int(rate*time.Since(start).Seconds()) + 1 - sent
			if due <= 0 {
				next := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
				if !sleep(time.Until(next)) {
					return
				}
				continue
			}
			k = min(k, due)
		}
		if c.win != nil {
			atLeast := 1
			if rate == 0 {
				atLeast = min(c.win.refill(), k)
			}
			ids = c.win.take(ids[:0], k, atLeast)
			if len(ids) == 0 {
				select {
				case <-c.win.wake:
				case <-stop:
					return
				}
				continue
			}
			k = len(ids)
		}
		ts := time.Now().UnixNano()
		buf = buf[:0]
		for j := range k {
			at := len(buf)
			buf = append(buf, c.tmpl...)
			if c.tsOff >= 0 {
				binary.BigEndian.PutUint64(buf[at+c.tsOff:], uint64(ts))
			}
			if c.win != nil {
				id := ids[j]
				binary.BigEndian.PutUint16(buf[at+c.idOff:], id)
				c.win.sentAt[id].Store(ts)
			}
		}
		if _, err := c.nc.Write(buf); err != nil {
			if c.stalled.Load() {
				c.fail("write: stalled when publishing stopped (broker not reading)")
			} else {
				c.fail(errorKind("write", err))
			}
			return
		}
		sent += k
		c.sent.Add(uint64(k))
	}
}
