package broker

import (
	"net"
	"net/netip"
	"runtime"
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
	refusedMemOps atomic.Uint64 // PUBLISH and SUBSCRIBE refused: memory ceiling

	memMu      sync.Mutex                    // one sampleMemory at a time
	memUse     atomic.Pointer[func() uint64] // memory in use; nil: memInUse (tests replace it)
	lastGC     time.Time                     // last collection made by sampleMemory; memMu held
	throttled  atomic.Uint64                 // publishes delayed by the publish rate
	slowClosed atomic.Uint64                 // clients disconnected for not reading
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
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.sampleMemory()
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

// gcEvery is how often, at most, the broker collects garbage to learn
// whether memory above the ceiling is really in use.
const gcEvery = 10 * time.Second

// sampleMemory compares the memory in use with Options.MemoryLimit and
// sets overMem. Memory the runtime holds but has freed does not count, so
// the broker is back under the ceiling as soon as what pushed it over is
// gone (a client disconnected, retained messages deleted).
func (s *Server) sampleMemory() {
	limit := s.opt().MemoryLimit
	if limit <= 0 {
		if s.limits.overMem.Swap(false) {
			s.log.Info("memory ceiling lifted: accepting new connections")
		}
		return
	}
	s.limits.memMu.Lock()
	defer s.limits.memMu.Unlock()
	use := memInUse
	if f := s.limits.memUse.Load(); f != nil {
		use = *f
	}
	inUse := use()
	if inUse > uint64(limit) && time.Since(s.limits.lastGC) >= gcEvery {
		// Perhaps garbage: look again after a collection.
		s.limits.lastGC = time.Now()
		runtime.GC()
		inUse = use()
	}
	over := inUse > uint64(limit)
	if over != s.limits.overMem.Swap(over) {
		if over {
			s.log.Warn("memory above the ceiling: refusing new connections, publishes and subscriptions until it falls", "limit_bytes", limit, "in_use_bytes", inUse)
		} else {
			s.log.Info("memory back under the ceiling: accepting new connections, publishes and subscriptions", "limit_bytes", limit, "in_use_bytes", inUse)
		}
	}
}

// memInUse returns the memory the Go runtime has mapped less what it has
// freed (free heap spans, and those returned to the system, which the
// total counts while they stay mapped).
func memInUse() uint64 {
	sample := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(sample)
	total, free, released := sample[0].Value.Uint64(), sample[1].Value.Uint64(), sample[2].Value.Uint64()
	if free+released > total {
		return 0
	}
	return total - free - released
}

// overMemory holds back an operation that would take more memory while
// the process is above the ceiling. A 5.0 client is answered at once
// (wait false); a 3.1.1 client, which cannot be told, is held back for up
// to maxThrottle while memory stays above (wait true). It reports whether
// memory is still above the ceiling.
func (c *conn) overMemory(wait bool) bool {
	l := &c.srv.limits
	if !l.overMem.Load() {
		return false
	}
	if wait {
		c.flushBatch() // others need not wait with this client (write.go)
	}
	for deadline := time.Now().Add(maxThrottle); wait && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if !l.overMem.Load() {
			return false
		}
	}
	l.refusedMemOps.Add(1)
	return true
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
	c.flushBatch() // others need not wait with this client (write.go)
	time.Sleep(d)
	return true
}
