package broker

import (
	"container/heap"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Parking idle connections (Linux). An idle connection costs its read
// loop's goroutine (a 2 KiB stack at least, and the goroutine itself) for
// as long as it stays idle, which for a fleet of devices that report now
// and then is nearly always. So once a plain TCP or Unix connection has
// been quiet for parkAfter, its read loop parks it and exits: the socket is
// registered, one-shot, in one of a few epoll instances owned by the
// broker, and the connection holds no goroutine and no read buffer. When
// the socket becomes readable (bytes, EOF, a reset: EPOLLIN, EPOLLRDHUP,
// EPOLLHUP), a new goroutine resumes the read loop where it stopped.
//
// The epoll instances only tell that a socket is readable; every read
// still goes through the net.Conn (the runtime's own poller has the
// descriptor too, which is fine). Every epoll_ctl on a connection's
// descriptor is made inside syscall.RawConn.Control, which keeps the
// descriptor open for its duration: a descriptor closed meanwhile can
// never be confused with a new connection given the same number. Closing
// a descriptor removes it from the epoll instances by itself.
//
// What else must resume a parked connection, since no read is pending to
// notice it: its keep-alive (1.5 x Keep Alive after the last packet,
// [MQTT-3.1.2-24]) by a timer armed while parked; and everything that ends
// a connection from another goroutine (closeWith, a takeover, a failed
// write), which calls wakeReader after the change, so that the resumed
// read loop meets the closed socket or the past deadline and ends the
// connection as before (the will published when the client vanished).
//
// Writes need no reader: a packet for a parked connection is written
// inline by the goroutine that queued it (write.go).
//
// TLS and WebSocket connections are not parked: their readers may hold
// decrypted or framed bytes the socket no longer shows as readable, and
// crypto/tls does not say whether it does. They keep the goroutine per
// connection, as on other systems (park_other.go). Connections behind a
// PROXY protocol header are parked once the bytes read past the header
// are consumed (parkRaw).

// parkAfter is how long a read loop waits with its goroutine before it
// parks the connection (the sweeper looks every parkAfter/2): a connection
// that talks more often than this never pays for parking and resuming.
const parkAfter = 100 * time.Millisecond

// parkState is the part of a conn that parking uses.
type parkState struct {
	state   atomic.Int32 // readRunning, readParking or readParked
	wakeReq atomic.Bool  // wakeReader was called: a read loop about to park must not
	id      uint64       // key in the poller's table, 0 until first parked; read loop only
	armed   bool         // the descriptor is in the epoll set (ADD done); read loop only
	kaAt    int64        // keep-alive deadline while parked (UnixNano); guarded by the poller's mu
	kaIdx   int32        // index in the poller's deadline heap, -1: none; guarded by the poller's mu
	listed  bool         // in the sweeper's set; read loop only

	mu        sync.Mutex // between the read loop's idle wait and the sweeper
	idle      bool       // the read loop waits in readIdle
	parkReq   bool       // the sweeper ended that wait to park the connection
	idleSince int64      // when the wait began (nanotime)
}

// A read loop that parks goes from readRunning to readParking (registering
// the socket) to readParked, and exits. Whoever moves readParked back to
// readRunning (readiness, the keep-alive timer, wakeReader) starts the next
// read loop; a wake during readParking moves it to readRunning and the
// parking read loop carries on itself. So at most one read loop runs.
const (
	readRunning int32 = iota
	readParking
	readParked
)

// parkingOff disables parking (GANNET_PARK=0), for comparison.
var parkingOff = os.Getenv("GANNET_PARK") == "0"

// readIdle waits for the next bytes of an idle connection (no partial
// packet buffered) into b. It reports parked when the connection was
// parked instead: the read loop must then return at once, without ending
// it or touching it again.
//
// The wait costs no timer operation: the read blocks as before, and the
// sweeper (sweep) interrupts it with a past read deadline once it has
// lasted parkAfter. The lock between the two makes sure the sweeper's
// deadline can only end this wait, never a later read.
func (c *conn) readIdle(b []byte) (n int, err error, parked bool) {
	var raw syscall.RawConn
	if !parkingOff {
		raw = c.parkRaw()
	}
	if raw == nil {
		n, err = c.readAlive(b)
		return n, err, false
	}
	ps := &c.park
	ps.wakeReq.Store(false) // before the flags are looked at
	if !ps.listed {
		ps.listed = true
		sweeper.add(c)
	}
	var asked bool
	for {
		ps.mu.Lock()
		ps.idle, ps.idleSince = true, nanotime()
		ps.mu.Unlock()
		n, err = c.read(b)
		ps.mu.Lock()
		ps.idle = false
		asked = ps.parkReq
		ps.parkReq = false
		ps.mu.Unlock()
		if asked {
			break
		}
		// Not the sweeper's deadline: a keep-alive deadline that may have
		// passed while packets kept arriving (keepalive.go). Not readAlive:
		// its rearm would also undo the sweeper's past deadline.
		if err == nil || !isTimeout(err) || !c.rearm() {
			return n, err, false
		}
	}
	// The sweeper set a past deadline: park if that is what ended the
	// read, else put the keep-alive deadline back.
	var ka time.Time
	if c.keepAlive > 0 {
		ka = c.lastPacket.Add(c.keepAlive)
	}
	due := c.yield.Load() || c.closed.Load() || (!ka.IsZero() && !time.Now().Before(ka))
	if isTimeout(err) && !due {
		if c.parkConn(raw) {
			return 0, nil, true
		}
		n, err = 0, nil // woken while parking: read on
	}
	if !isTimeout(err) || !due {
		c.nc.SetReadDeadline(ka) // zero: none
		// A takeover or closeWith sets its flag, then a past deadline:
		// one set before the line above would be lost.
		if c.yield.Load() || c.closed.Load() {
			c.nc.SetReadDeadline(time.Now())
		}
	}
	return n, err, false
}

// nanotime is a monotonic clock reading for idle times.
func nanotime() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

// sweeper holds the connections that may be parked and are not, and
// interrupts those that have waited idle for parkAfter. It runs only while
// it holds some.
var sweeper = &sweepSet{conns: make(map[*conn]struct{})}

type sweepSet struct {
	mu      sync.Mutex
	conns   map[*conn]struct{}
	running bool
}

// add lists c; its read loop calls it once, the first time it waits idle
// after starting or resuming.
func (s *sweepSet) add(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	if !s.running {
		s.running = true
		go s.sweep()
	}
	s.mu.Unlock()
}

func (s *sweepSet) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// sweep asks every listed connection idle for parkAfter to park, by a past
// read deadline, and forgets those that ended or parked.
func (s *sweepSet) sweep() {
	var batch []*conn
	for {
		time.Sleep(parkAfter / 2)
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		batch = batch[:0]
		for c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.Unlock()
		now := nanotime()
		for i, c := range batch {
			batch[i] = nil
			if c.handedOver.Load() { // ended
				s.remove(c)
				continue
			}
			ps := &c.park
			ps.mu.Lock()
			if ps.idle && !ps.parkReq && now-ps.idleSince >= int64(parkAfter) {
				ps.parkReq = true
				c.nc.SetReadDeadline(time.Now()) // under mu: only this wait ends
			}
			ps.mu.Unlock()
		}
	}
}

// parkRaw returns the socket a parked connection waits on: a plain TCP or
// Unix socket, or one behind a PROXY protocol header (listener/proxy.go)
// once no byte read past the header waits to be served; nil for anything
// that buffers or transforms what it reads (TLS, WebSocket). Read loop only.
func (c *conn) parkRaw() syscall.RawConn {
	if c.raw != nil {
		return c.raw
	}
	nc := c.nc
	for range 4 { // the listener may wrap once for the first byte, once for the header
		w, ok := nc.(interface {
			NetConn() net.Conn
			Buffered() int
		})
		if !ok || w.Buffered() > 0 {
			return nil
		}
		nc = w.NetConn()
		if raw := rawConn(nc); raw != nil {
			return raw
		}
	}
	return nil
}

// parkConn registers the idle connection, whose socket is raw, with a
// poller and its keep-alive deadline. It reports false when the read loop
// must read on (woken meanwhile, or the socket could not be registered).
// Read loop only; nothing buffered.
func (c *conn) parkConn(raw syscall.RawConn) bool {
	ps := &c.park
	if ps.id == 0 {
		ps.id = parkIDs.Add(1)
		ps.kaIdx = -1
	}
	p := pollerFor(ps.id)
	if p == nil {
		return false
	}
	ps.listed = false
	sweeper.remove(c)
	ps.state.Store(readParking)
	// Added while parking: a keep-alive due at once makes the read loop
	// read on, and meet its deadline.
	var ka int64
	if c.keepAlive > 0 {
		ka = c.lastPacket.Add(c.keepAlive).UnixNano()
	}
	p.add(ps.id, c, ka)
	var cerr error
	err := raw.Control(func(fd uintptr) { cerr = p.arm(int(fd), ps.id, &ps.armed) })
	if err == nil && cerr == nil && ps.state.CompareAndSwap(readParking, readParked) {
		// Parked: from here another read loop may run; touch nothing
		// but the atomics. A wake between the checks in readIdle and
		// the registration saw the connection running: take it back.
		return !(ps.wakeReq.Load() && c.unpark())
	}
	// Not registered (closed meanwhile, or epoll refused), or woken while
	// registering: read on.
	if cerr != nil && !parkWarned.Swap(true) {
		c.srv.log.Warn("cannot park idle connections: they keep their goroutine", "client", c.clientID, "error", cerr)
	}
	ps.state.Store(readRunning)
	c.unparked()
	return false
}

var parkWarned atomic.Bool

// unpark makes a parked connection running again; it reports whether this
// caller did it, and then owns the read loop.
func (c *conn) unpark() bool {
	if !c.park.state.CompareAndSwap(readParked, readRunning) {
		return false
	}
	c.unparked()
	return true
}

// unparked leaves the poller's table and deadline heap. Called by the
// owner of the read loop.
func (c *conn) unparked() {
	pollerFor(c.park.id).remove(c)
}

// resumeReader starts a new read loop for a parked connection, or tells a
// parking one to read on; a no-op for one that is running (a stale
// readiness or timer).
func (c *conn) resumeReader() {
	ps := &c.park
	for {
		switch ps.state.Load() {
		case readParked:
			if c.unpark() {
				go c.resume()
				return
			}
		case readParking:
			if ps.state.CompareAndSwap(readParking, readRunning) {
				return
			}
		default:
			return
		}
	}
}

// resume is the read loop of a connection that was parked. The wait that
// parked it ended on a past read deadline: the keep-alive one (or none)
// comes back first.
func (c *conn) resume() {
	var ka time.Time
	if c.keepAlive > 0 {
		ka = c.lastPacket.Add(c.keepAlive)
	}
	c.nc.SetReadDeadline(ka)
	if c.yield.Load() || c.closed.Load() { // set their flag, then a past deadline
		c.nc.SetReadDeadline(time.Now())
	}
	c.readFrom(nil)
}

// wakeReader makes the read loop look at the connection again after
// another goroutine closed it, set a past read deadline or asked it to
// yield: a parked one is resumed, one about to park does not park.
func (c *conn) wakeReader() {
	c.park.wakeReq.Store(true)
	c.resumeReader()
}

// poller is one epoll instance and its goroutine, shared by every Server
// in the process, and the connections parked on it by id.
//
// The keep-alive deadlines of its parked connections are in a heap with
// one timer for the earliest: about 24 bytes per parked connection where
// a timer each cost about 150 (measured with BenchmarkIdleConnections).
type poller struct {
	epfd  int
	mu    sync.Mutex
	conns map[uint64]*conn
	kas   kaHeap      // parked connections with a keep-alive, earliest deadline first
	timer *time.Timer // fires at kas[0]'s deadline
	next  int64       // when timer fires (UnixNano), 0: stopped
}

var (
	parkIDs     atomic.Uint64
	pollersOnce sync.Once
	pollers     []*poller
)

// pollerFor returns the poller for id, starting the pollers on first use;
// nil when epoll is unavailable.
func pollerFor(id uint64) *poller {
	pollersOnce.Do(startPollers)
	if len(pollers) == 0 {
		return nil
	}
	return pollers[id%uint64(len(pollers))]
}

func startPollers() {
	n := min(max(runtime.GOMAXPROCS(0)/2, 1), 4)
	for range n {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			slog.Warn("broker: epoll unavailable: idle connections keep their goroutine", "error", err)
			break
		}
		p := &poller{epfd: fd, conns: make(map[uint64]*conn)}
		p.timer = time.AfterFunc(time.Hour, p.expire)
		p.timer.Stop()
		pollers = append(pollers, p)
		go p.run()
	}
}

// add records c as parked under id, with its keep-alive deadline ka
// (UnixNano; 0: none).
func (p *poller) add(id uint64, c *conn, ka int64) {
	p.mu.Lock()
	p.conns[id] = c
	if ka != 0 {
		c.park.kaAt = ka
		heap.Push(&p.kas, c)
		if p.next == 0 || ka < p.next {
			p.next = ka
			p.timer.Reset(time.Duration(ka - time.Now().UnixNano()))
		}
	}
	p.mu.Unlock()
}

// remove forgets a connection no longer parked. The timer may still fire
// for its deadline: it then finds nothing due and is set again.
func (p *poller) remove(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.park.id)
	if i := c.park.kaIdx; i >= 0 {
		heap.Remove(&p.kas, int(i))
	}
	p.mu.Unlock()
}

// expire resumes the parked connections whose keep-alive is due: each
// read loop meets its past deadline and ends the connection
// [MQTT-3.1.2-24].
func (p *poller) expire() {
	var due []*conn
	p.mu.Lock()
	now := time.Now().UnixNano()
	for len(p.kas) > 0 && p.kas[0].park.kaAt <= now {
		due = append(due, heap.Pop(&p.kas).(*conn))
	}
	p.next = 0
	if len(p.kas) > 0 {
		p.next = p.kas[0].park.kaAt
		p.timer.Reset(time.Duration(p.next - now))
	}
	p.mu.Unlock()
	for _, c := range due {
		c.resumeReader()
	}
}

// kaHeap orders parked connections by keep-alive deadline; each knows its
// index. The poller's mu guards it.
type kaHeap []*conn

func (h kaHeap) Len() int           { return len(h) }
func (h kaHeap) Less(i, j int) bool { return h[i].park.kaAt < h[j].park.kaAt }
func (h kaHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].park.kaIdx, h[j].park.kaIdx = int32(i), int32(j)
}
func (h *kaHeap) Push(x any) {
	c := x.(*conn)
	c.park.kaIdx = int32(len(*h))
	*h = append(*h, c)
}
func (h *kaHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.park.kaIdx = -1
	return c
}

// arm registers fd for one readiness event, reported with id. Called
// inside RawConn.Control: fd stays open meanwhile.
func (p *poller) arm(fd int, id uint64, added *bool) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(id)),
		Pad:    int32(uint32(id >> 32)),
	}
	op := syscall.EPOLL_CTL_MOD
	if !*added {
		op = syscall.EPOLL_CTL_ADD
	}
	err := syscall.EpollCtl(p.epfd, op, fd, &ev)
	if err == syscall.EEXIST { // cannot happen while added tracks it; be safe
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	} else if err == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	}
	if err == nil {
		*added = true
	}
	return err
}

// run waits for parked sockets to become readable and resumes their read
// loops. It blocks one thread in epoll_wait; it never ends.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			slog.Error("broker: epoll_wait failed: parked connections wait for their keep-alive", "error", err)
			time.Sleep(time.Second)
			continue
		}
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.resumeReader()
			}
		}
	}
}
