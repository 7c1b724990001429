package broker

import (
	"net"
	"net/netip"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Overload protection: connection rates per source address, a memory
// ceiling for new connections, per-client publish rates, and slow
// consumers cut off past a hard bound. Each refusal is counted.

// limits holds the broker's overload state.
type limits struct {
	mu      sync.Mutex
	perIP   map[netip.Addr]*ipLimit
	overMem atomic.Bool // memory in use is above Options.MemoryLimit

	refusedRate   atomic.Uint64 // connections refused: rate per source address
	refusedMemory atomic.Uint64 // connections refused: memory ceiling
	refusedOwner  atomic.Uint64 // connections refused: session of another identity
	throttled     atomic.Uint64 // publishes delayed by the publish rate
	slowClosed    atomic.Uint64 // clients disconnected for not reading
}

type ipLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

// allowConnection reports whether addr may open another connection now.
func (s *Server) allowConnection(addr net.Addr) bool {
	if s.opt().ConnectionRate <= 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return true // not an IP connection (Unix socket)
	}
	ip := ap.Addr().Unmap()
	now := time.Now()
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	if s.limits.perIP == nil {
		s.limits.perIP = make(map[netip.Addr]*ipLimit)
	}
	l := s.limits.perIP[ip]
	if l == nil {
		l = &ipLimit{lim: rate.NewLimiter(rate.Limit(s.opt().ConnectionRate), max(1, s.opt().ConnectionBurst))}
		s.limits.perIP[ip] = l
	}
	l.seen = now
	if l.lim.AllowN(now, 1) {
		return true
	}
	s.limits.refusedRate.Add(1)
	return false
}

// limitsLoop samples memory and forgets idle source addresses until stop.
func (s *Server) limitsLoop(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if s.opt().MemoryLimit > 0 {
			metrics.Read(sample)
			over := sample[0].Value.Uint64() > uint64(s.opt().MemoryLimit)
			if over != s.limits.overMem.Swap(over) {
				if over {
					s.log.Warn("memory above the ceiling: refusing new connections until it falls", "limit_bytes", s.opt().MemoryLimit, "in_use_bytes", sample[0].Value.Uint64())
				} else {
					s.log.Info("memory back under the ceiling: accepting new connections")
				}
			}
		}
		if n%60 == 59 {
			cut := time.Now().Add(-time.Minute)
			s.limits.mu.Lock()
			for ip, l := range s.limits.perIP {
				if l.seen.Before(cut) {
					delete(s.limits.perIP, ip)
				}
			}
			s.limits.mu.Unlock()
		}
	}
}

// maxThrottle is the longest one PUBLISH is held back; a client that would
// wait longer is disconnected (0x96 in 5.0).
const maxThrottle = 5 * time.Second

// throttle holds the read loop back while the client publishes faster than
// its rate allows. It reports false when the client is so far over that it
// should be disconnected.
func (c *conn) throttle(size int) bool {
	var d time.Duration
	now := time.Now()
	if c.pubRate != nil {
		d = c.pubRate.ReserveN(now, 1).DelayFrom(now)
	}
	if c.byteRate != nil {
		n := min(size, c.byteRate.Burst())
		d = max(d, c.byteRate.ReserveN(now, n).DelayFrom(now))
	}
	if d <= 0 {
		return true
	}
	if d > maxThrottle || c.srv.opt().PublishRateDisconnect {
		return false
	}
	c.srv.limits.throttled.Add(1)
	time.Sleep(d)
	return true
}
