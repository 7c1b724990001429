package listener

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingHandshakes bounds the connections of one listener that are in
// their PROXY header or TLS handshake at once, or handshaken and waiting for
// Accept. When it is reached, the oldest connection still in its handshake
// is dropped to make room, so that silent sockets cannot stop the listener
// from accepting; only when every slot holds a handshaken connection that
// Accept has not taken does the listener wait, and new clients wait in the
// kernel's backlog.
const maxPendingHandshakes = 1024

// Listener is a net.Listener of one of the five types. Accept returns
// connections that carry the raw MQTT byte stream: the PROXY header has
// been read, the TLS handshake done, the WebSocket upgraded. It is safe for
// concurrent use.
type Listener struct {
	cfg  Config
	log  *slog.Logger
	raw  net.Listener // the socket
	next net.Listener // raw, or the stage running PROXY headers and TLS handshakes
	tls  *tlsStore    // tls and wss
	ws   *wsServer    // ws and wss

	closeOnce sync.Once
	closeErr  error
}

var _ net.Listener = (*Listener)(nil)

// Listen validates cfg, fills its defaults and opens the listener. For
// tls and wss it loads the certificate, key and CA files.
func Listen(cfg Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{cfg: cfg, log: log.With("listener", cfg.Name)}
	if cfg.Type.isTLS() {
		var alpn []string
		if cfg.Type == TypeWSS {
			alpn = []string{"http/1.1"}
		}
		s, err := newTLSStore(cfg.TLS, alpn)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
		}
		l.tls = s
	}
	var err error
	if cfg.Type == TypeUnix {
		l.raw, err = listenUnix(cfg.Address, cfg.SocketMode)
	} else {
		l.raw, err = listenTCP(cfg.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
	}
	l.next = l.raw
	if l.tls != nil || cfg.ProxyProtocol {
		l.next = newStage(l)
	}
	if cfg.Type.isWS() {
		l.ws = startWS(l, l.next)
	}
	return l, nil
}

// Accept waits for the next connection ready for MQTT. It returns an error
// wrapping net.ErrClosed after Close. Connections refused before they are
// ready (PROXY header, TLS handshake, WebSocket upgrade) never reach it;
// they are logged.
func (l *Listener) Accept() (net.Conn, error) {
	if l.ws != nil {
		return l.ws.accept()
	}
	return l.next.Accept()
}

// Close stops accepting, aborts pending handshakes and, for unix, removes
// the socket file. Connections already returned by Accept stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		if l.ws != nil {
			l.closeErr = l.ws.close()
		}
		if err := l.next.Close(); err != nil && !errors.Is(err, net.ErrClosed) && l.closeErr == nil {
			l.closeErr = err
		}
		if l.closeErr != nil {
			l.closeErr = fmt.Errorf("listener %q: close: %w", l.cfg.Name, l.closeErr)
		}
	})
	return l.closeErr
}

// Addr is the socket's address (with the port chosen for ":0").
func (l *Listener) Addr() net.Addr { return l.raw.Addr() }

// Name is Config.Name, or "<type>://<address>" when that was empty.
func (l *Listener) Name() string { return l.cfg.Name }

// Type is the listener's type.
func (l *Listener) Type() Type { return l.cfg.Type }

// Reload re-reads the certificate, key, CA and CRL files of a tls or wss
// listener; handshakes that start afterwards use them, established
// connections keep theirs. If a file is unreadable or invalid, the files
// loaded before stay in use and the error is returned. Reload of other
// listener types does nothing.
func (l *Listener) Reload() error {
	if l.tls == nil {
		return nil
	}
	if err := l.tls.reload(); err != nil {
		return fmt.Errorf("listener %q: reload: %w", l.cfg.Name, err)
	}
	l.log.Info("TLS certificates reloaded", "cert", l.cfg.TLS.CertFile, "ca", l.cfg.TLS.CAFile)
	return nil
}

// prepare readies a connection from the socket: it reads the PROXY header
// and runs the TLS handshake, both before one deadline of HandshakeTimeout,
// and the first byte before FirstByteTimeout. It runs on the connection's
// own goroutine (stage.handshake).
func (l *Listener) prepare(raw net.Conn) (net.Conn, error) {
	start := time.Now()
	if err := raw.SetDeadline(start.Add(min(l.cfg.FirstByteTimeout, l.cfg.HandshakeTimeout))); err != nil {
		return nil, err
	}
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil, fmt.Errorf("%w (%v)", errFirstByte, l.cfg.FirstByteTimeout)
		}
		return nil, err
	}
	if err := raw.SetDeadline(start.Add(l.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	// The byte is replayed to the PROXY header reader or the TLS server.
	var c net.Conn = &proxyConn{Conn: raw, rest: first[:]}
	if l.cfg.ProxyProtocol {
		var err error
		if c, err = readProxyHeader(c, trusted(raw.RemoteAddr(), l.cfg.ProxyFrom)); err != nil {
			return nil, err
		}
	}
	if l.tls != nil {
		tc := tls.Server(c, l.tlsServer())
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("listener: TLS handshake: %w", err)
		}
		c = tc
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

// tlsServer is the tls.Config for new server handshakes.
func (l *Listener) tlsServer() *tls.Config { return l.tls.server }

// refused logs a connection that failed before Accept.
func (l *Listener) refused(remote net.Addr, err error) {
	level := slog.LevelInfo
	switch {
	case errors.Is(err, ErrProxyUntrusted), errors.Is(err, ErrProxyHeaderMissing), errors.Is(err, ErrProxyHeaderInvalid):
		level = slog.LevelWarn // misconfigured proxy, or spoofing
	case errors.Is(err, io.EOF):
		level = slog.LevelDebug // health checks and port scans
	case errors.Is(err, errFirstByte), errors.Is(err, errEvicted):
		level = slog.LevelDebug // silent sockets: summarised by stage.noteDropped
	}
	l.log.Log(context.Background(), level, "connection refused before MQTT", "remote", remote, "error", err)
}

// stage is the net.Listener between the socket and Accept for listeners
// with TLS or the PROXY protocol. Its own goroutine accepts from the
// socket; each connection is readied (Listener.prepare) on a goroutine of
// its own, so a slow or silent client never holds up Accept for others.
//
// Connections in prepare are kept in arrival order, counted per source:
// when all slots are taken the oldest is dropped (closed, so its prepare
// fails), and a source at MaxPendingPerSource has its own oldest dropped.
type stage struct {
	l     *Listener
	ready chan net.Conn  // readied conns, waiting for Accept
	slots chan struct{}  // one per connection in prepare or waiting
	done  chan struct{}  // closed by Close
	ended chan struct{}  // closed when the accept loop ends with err
	err   error          // the socket's accept error; read after ended
	wg    sync.WaitGroup // the accept loop and the handshakes

	mu       sync.Mutex               // guards the fields below
	pending  map[net.Conn]*pendingRef // in prepare; closed by Close
	order    list.List                // of *pendingRef, oldest first
	bySource map[netip.Prefix]int     // pending conns per capped source
	closed   bool
	dropped  int       // pending conns dropped since lastNote
	lastNote time.Time // of the last "dropped" warning
}

// pendingRef is one connection in prepare.
type pendingRef struct {
	c       net.Conn
	src     netip.Prefix // invalid: not capped (trusted proxy, unix)
	elem    *list.Element
	evicted atomic.Bool
}

func newStage(l *Listener) *stage {
	s := &stage{
		l:        l,
		ready:    make(chan net.Conn),
		slots:    make(chan struct{}, maxPendingHandshakes),
		done:     make(chan struct{}),
		ended:    make(chan struct{}),
		pending:  make(map[net.Conn]*pendingRef),
		bySource: make(map[netip.Prefix]int),
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// loop accepts from the socket until it is closed.
func (s *stage) loop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return
		default:
			// Every slot taken: drop the oldest handshake to make room,
			// then wait for its goroutine to give the slot back.
			s.mu.Lock()
			if e := s.order.Front(); e != nil {
				s.evictLocked(e.Value.(*pendingRef))
			}
			s.mu.Unlock()
			select {
			case s.slots <- struct{}{}:
			case <-s.done:
				return
			}
		}
		c, err := s.l.raw.Accept()
		if err != nil {
			<-s.slots
			select {
			case <-s.done:
				return
			default:
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.l.log.Warn("accept failed, retrying", "error", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-s.done:
					return
				}
				continue
			}
			s.err = err
			close(s.ended)
			return
		}
		delay = 0
		p := &pendingRef{c: c, src: s.source(c.RemoteAddr())}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-s.slots
			return
		}
		if p.src.IsValid() && s.l.cfg.MaxPendingPerSource > 0 && s.bySource[p.src] >= s.l.cfg.MaxPendingPerSource {
			for e := s.order.Front(); e != nil; e = e.Next() {
				if old := e.Value.(*pendingRef); old.src == p.src {
					s.evictLocked(old)
					break
				}
			}
		}
		p.elem = s.order.PushBack(p)
		s.pending[c] = p
		if p.src.IsValid() {
			s.bySource[p.src]++
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handshake(p)
	}
}

// source is the key under which the connection from addr is capped: its
// IPv4 address or IPv6 /64; invalid (no cap) for a trusted proxy, whose
// connections carry many clients, and for addresses that are not IP.
func (s *stage) source(addr net.Addr) netip.Prefix {
	ip, ok := addrIP(addr)
	if !ok || s.l.cfg.ProxyProtocol && trustedIP(ip, s.l.cfg.ProxyFrom) {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	pfx, _ := ip.Prefix(bits)
	return pfx
}

// evictLocked drops a connection in prepare: it is closed, so its
// handshake fails and gives its slot back. s.mu held on entry.
func (s *stage) evictLocked(p *pendingRef) {
	p.evicted.Store(true)
	s.forgetLocked(p)
	p.c.Close()
	s.noteDroppedLocked()
}

// forgetLocked removes p from the pending set. s.mu held on entry.
func (s *stage) forgetLocked(p *pendingRef) {
	if _, ok := s.pending[p.c]; !ok {
		return
	}
	delete(s.pending, p.c)
	s.order.Remove(p.elem)
	if p.src.IsValid() {
		if n := s.bySource[p.src] - 1; n > 0 {
			s.bySource[p.src] = n
		} else {
			delete(s.bySource, p.src)
		}
	}
}

// dropNoteEvery spaces the warnings about dropped handshakes.
const dropNoteEvery = 10 * time.Second

// noteDroppedLocked counts a connection dropped for silence or to make
// room, and warns at most every dropNoteEvery with the count: one line
// per connection would let a flood of silent sockets flood the log too.
// s.mu held on entry.
func (s *stage) noteDroppedLocked() {
	s.dropped++
	if now := time.Now(); now.Sub(s.lastNote) >= dropNoteEvery {
		s.l.log.Warn("dropping connections that stay silent or crowd the handshake slots (a flood of idle sockets?)",
			"dropped", s.dropped, "since", s.lastNote.Format(time.RFC3339), "first_byte_timeout", s.l.cfg.FirstByteTimeout,
			"max_pending_per_source", s.l.cfg.MaxPendingPerSource, "max_pending", maxPendingHandshakes)
		s.dropped, s.lastNote = 0, now
	}
}

// handshake readies one connection and waits for Accept to take it.
func (s *stage) handshake(p *pendingRef) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	raw := p.c
	c, err := s.l.prepare(raw)
	if p.evicted.Load() && err != nil {
		err = fmt.Errorf("%w: %w", errEvicted, err)
	}
	s.mu.Lock()
	s.forgetLocked(p)
	closed := s.closed
	if err != nil && errors.Is(err, errFirstByte) && !closed {
		s.noteDroppedLocked()
	}
	s.mu.Unlock()
	if err != nil {
		raw.Close()
		if !closed {
			s.l.refused(raw.RemoteAddr(), err)
		}
		return
	}
	if p.evicted.Load() { // dropped as its handshake finished
		c.Close()
		return
	}
	select {
	case s.ready <- c:
	case <-s.done:
		c.Close()
	}
}

func (s *stage) Accept() (net.Conn, error) {
	select {
	case <-s.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-s.ready:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	case <-s.ended:
		return nil, s.err
	}
}

// Close closes the socket and the connections in their handshake, and
// waits for the goroutines.
func (s *stage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	err := s.l.raw.Close()
	s.wg.Wait()
	return err
}

func (s *stage) Addr() net.Addr { return s.l.raw.Addr() }

// isTemporary reports accept errors worth retrying (too many open files and
// the like).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.As(err, &t) && t.Temporary()
}
