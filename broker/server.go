package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
	"github.com/gannet-mqtt/gannet/topic"
)

// Server is an MQTT broker. Create it with New, hand it listeners with
// Serve, stop it with Close.
type Server struct {
	cfg       atomic.Pointer[Options] // replaced whole by Reload
	log       *slog.Logger
	subs      *topic.Trie[*session]
	retained  *topic.Retained[*message]
	stats     stats
	started   time.Time
	store     store.Store
	cluster   Cluster       // nil on a single node
	msgSeq    atomic.Uint64 // last message ID given to the store
	syncer    syncer        // the store's Sync, nil when it has none
	txns      txnSet        // open store transactions (storetxn.go)
	writeSeq  atomic.Uint64 // store writes made
	syncedSeq atomic.Uint64 // store writes known durable

	mu        sync.Mutex // guards the fields below
	sessions  map[string]*session
	conns     map[*conn]struct{}
	lingering map[*conn]struct{} // connections closing gracefully (linger.go)
	listeners map[net.Listener]struct{}
	closed    bool
	stop      chan struct{} // closed by Close: ends background loops
	limits    limits
	logins    loginGuard // LoginLimits state

	wg sync.WaitGroup // connection goroutines

	// retainMu orders retained publishes against subscriptions.
	retainMu    sync.Mutex
	retainQuota retainQuota   // guarded by retainMu
	sweep       retainedSweep // deletes expired retained messages

	// pubMatches is the scratch for Publish calls made outside a connection.
	pubMu      sync.Mutex
	pubMatches topic.Matches[*session]

	observers       atomic.Pointer[observers]    // nil: none (observer.go)
	delayed         delayQueue                   // delayed publish (delayed.go)
	topicMetrics    atomic.Pointer[topicMetrics] // per-topic counters, nil: none (topicmetrics.go)
	queuedBytes     atomic.Int64                 // bytes of all sessions' in-memory queues (MaxQueuedBytesTotal)
	sessionCaps     sync.Map                     // client identifier to int64: SetSessionByteCap
	sessionCapCount atomic.Int64                 // entries in sessionCaps
}

// stats are the broker's counters.
type stats struct {
	connections   atomic.Int64     // currently connected clients
	accepted      atomic.Uint64    // connections accepted since start
	received      atomic.Uint64    // PUBLISH packets received
	sent          atomic.Uint64    // PUBLISH packets sent
	dropped       atomic.Uint64    // QoS 1/2 messages dropped: session queue full
	slowDropped   atomic.Uint64    // QoS 0 messages dropped: client not reading
	tooLarge      atomic.Uint64    // messages dropped: over the client's maximum packet size
	retainRefused atomic.Uint64    // retained messages not stored: over a retained quota
	receivedQoS   [3]atomic.Uint64 // PUBLISH packets received, by QoS
	sentQoS       [3]atomic.Uint64 // PUBLISH packets sent, by QoS
	bytesIn       atomic.Uint64    // bytes read from clients
	bytesOut      atomic.Uint64    // bytes written to clients
	maxConns      atomic.Int64     // most clients connected at once

	droppedBudget   atomic.Uint64 // QoS 1/2 deliveries dropped: over MaxQueuedBytesTotal
	delayedRefused  atomic.Uint64 // delayed PUBLISH packets refused: malformed, too long a delay, no room
	delayedReleased atomic.Uint64 // delayed messages published when due
}

// New returns a server with the given options.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	st := opts.Store
	if st == nil {
		st = memory.New()
	}
	if ss, ok := opts.Cluster.(SharedSessions); ok {
		st = ss.SessionStore(st) // persistent sessions live in the cluster
	}
	s := &Server{
		store:     st,
		log:       log,
		subs:      topic.NewTrie[*session](topic.TrieOptions{ShareStrategy: opts.ShareStrategy}),
		retained:  topic.NewRetained[*message](),
		started:   time.Now(),
		sessions:  make(map[string]*session),
		conns:     make(map[*conn]struct{}),
		listeners: make(map[net.Listener]struct{}),
	}
	s.cfg.Store(&opts)
	s.syncer, _ = store.Find[syncer](st)
	s.txns.batcher, _ = store.Find[store.Batcher](st)
	s.stop = make(chan struct{})
	s.cluster = opts.Cluster
	s.topicMetrics.Store(newTopicMetrics(opts.TopicMetrics))
	if err := s.restore(); err != nil {
		s.stopSweep()
		return nil, err
	}
	if err := s.startDelayed(); err != nil {
		s.stopSweep()
		return nil, fmt.Errorf("broker: loading delayed messages: %w", err)
	}
	if s.cluster != nil {
		if err := s.cluster.Start(inbound{s}); err != nil {
			s.stopSweep()
			return nil, fmt.Errorf("broker: join the cluster: %w", err)
		}
	}
	if opts.SysInterval > 0 {
		go s.sysLoop(opts.Version, s.stop)
	}
	go s.limitsLoop(s.stop)
	return s, nil
}

// Serve accepts connections on l until Close; it always returns an error,
// ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener) error { return s.ServeListener(l, ListenerOptions{}) }

// ServeListener is Serve with per-listener settings.
func (s *Server) ServeListener(l net.Listener, lo ListenerOptions) error {
	if lo.Name == "" {
		lo.Name = l.Addr().String()
	}
	ls := &listenerState{ListenerOptions: lo}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close() // as Close closes the listeners it serves
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if temporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "listener", l.Addr().String(), "error", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("broker: accept on %s: %w", l.Addr(), err)
		}
		delay = 0
		s.wg.Add(1)
		go s.handshake(nc, ls)
	}
}

// temporary reports whether an accept error passes by itself: a time-out,
// or "too many open files" and the like.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// Serving reports whether the broker accepts connections: it serves at
// least one listener and has not been closed.
func (s *Server) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && len(s.listeners) > 0
}

// ListenAndServe listens on a TCP address and serves it. Accepted
// connections get TCP keep-alive only when their CONNECT asks for Keep
// Alive 0 (tcpkeepalive.go).
func (s *Server) ListenAndServe(addr string) error {
	lc := net.ListenConfig{KeepAlive: -1}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Close stops the listeners, disconnects every client (5.0 clients hear
// 0x8B Server shutting down) and waits for their goroutines. A clustered
// node first tells the other nodes it leaves and releases its clients'
// identifiers; its 5.0 clients then hear 0x9C Use another server with a
// live node's address as Server Reference (clusterops.go).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.stopSweep()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.lingering {
		c.nc.Close() // ends its linger at once
	}
	conns := make([]*conn, 0, len(s.conns))
	connected := make(map[*conn]bool, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
		connected[c] = c.connected // written under s.mu, with c.version before it
	}
	s.mu.Unlock()
	s.sweep.running.Wait() // a sweep under way ends before the caller closes the store
	s.stopDelayed()        // not under s.mu: it waits for a delayed message being published
	// A clustered node moves its clients to the others (clusterops.go).
	serverRef := s.drainCluster()
	for _, c := range conns {
		if connected[c] && c.version >= packet.V5 { // no DISCONNECT before CONNACK [MQTT-3.14.0-1]
			d := &packet.Disconnect{ReasonCode: packet.ServerShuttingDown}
			if ref := serverRef(); ref != "" { // send clients to another server (5.0 section 4.11)
				d.ReasonCode = packet.UseAnotherServer
				d.Properties.SetString(packet.PropServerReference, ref)
			}
			c.closeWith(d)
		} else {
			c.closeWith(nil)
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("shutdown: some connections did not end within 5s")
	}
	if s.cluster != nil {
		if err := s.cluster.Close(); err != nil {
			s.log.Warn("shutdown: leaving the cluster failed", "error", err)
		}
	}
	return nil
}

// Publish routes a message from inside the process, as if a client had
// published it: retained handling included.
func (s *Server) Publish(topicName string, payload []byte, qos byte, retain bool) error {
	if err := packet.ValidTopicName(topicName); err != nil {
		return fmt.Errorf("broker: publish to %q: %w", topicName, err)
	}
	if qos > 2 {
		return fmt.Errorf("broker: publish to %q: QoS %d above 2", topicName, qos)
	}
	m := newMessage(&packet.Publish{Topic: topicName, Payload: payload, QoS: qos, Retain: retain}, time.Now())
	s.pubMu.Lock()
	s.publish(m, nil, &s.pubMatches)
	s.pubMu.Unlock()
	return nil
}

// quotaRefused is what publish returns for a retained message over its
// quota whose publisher asked to be told (refuseOverQuota).
const quotaRefused = -1

// publish takes ownership of m: it updates the retained store and hands m
// to every matching subscription [MQTT-4.5.0-1]. matches is the caller's
// scratch space. from is the publishing session (nil for the broker). A
// retained message over the retained quota is routed but not stored,
// unless m.refuseOverQuota: then it goes nowhere and publish returns
// quotaRefused.
func (s *Server) publish(m *message, from *session, matches *topic.Matches[*session]) int {
	if s.cluster != nil && !s.route(m) {
		return routeFailed
	}
	return s.publishLocal(m, from, matches)
}

// publishLocal is publish after the cluster took m: it delivers m on this
// node.
func (s *Server) publishLocal(m *message, from *session, matches *topic.Matches[*session]) int {
	s.countIn(m)
	if m.retain {
		// A subscription being made scans the retained messages under the
		// same lock, so it gets this message either live or retained,
		// never both.
		s.retainMu.Lock()
		defer s.retainMu.Unlock()
		if !s.retainLocked(m) && m.refuseOverQuota {
			s.emitPublished(m, from, EventPublished, "")
			s.emitPublished(m, from, EventDropped, DropQuotaExceeded)
			m.countDropped(m.qos)
			return quotaRefused
		}
	}
	s.emitPublished(m, from, EventPublished, "")
	matches.Reset()
	s.subs.Match(m.topic, from, online, matches)
	for i := range matches.Deliveries {
		d := &matches.Deliveries[i] // deliver checks read access
		if d.Share != "" && s.cluster != nil && routed(m.topic) {
			continue // the cluster picks one member cluster-wide (cluster.go)
		}
		// RETAIN is 0 on established subscriptions [MQTT-3.3.1-9] unless
		// Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13].
		d.Subscriber.deliver(m, s.outQoS(m.qos, d.QoS), m.retain && d.RetainAsPublished, d.IDs, d.Share) // [MQTT-3.8.4-6] [MQTT-4.8.2-3]
	}
	if len(matches.Deliveries) == 0 {
		s.emitPublished(m, from, EventDropped, DropNoSubscribers)
	}
	if t := m.txn.Load(); t != nil {
		t.commit() // with retainMu held: retained writes stay in order (storetxn.go)
		m.txn.Store(nil)
	}
	return len(matches.Deliveries)
}

// redeliverShared offers deliveries held by a shared-subscription member
// whose session ended to another member of the same group.
func (s *Server) redeliverShared(orphans []*outbound) {
	var matches topic.Matches[*session]
	for _, o := range orphans {
		if o.msg == nil || o.msg.expired(time.Now()) {
			continue
		}
		matches.Reset()
		s.subs.Match(o.msg.topic, nil, live, &matches)
		for i := range matches.Deliveries {
			d := &matches.Deliveries[i]
			if d.Share == o.share && !d.Subscriber.ended.Load() {
				d.Subscriber.deliver(o.msg, s.outQoS(o.msg.qos, d.QoS), o.retain, d.IDs, d.Share)
				break
			}
		}
	}
}

func online(s *session) bool { return s.conn.Load() != nil }

func live(s *session) bool { return s.conn.Load() != nil && !s.ended.Load() }

// handshake reads CONNECT within the connect timeout, then hands the
// connection to its read loop.
func (s *Server) handshake(nc net.Conn, lo *listenerState) {
	c := &conn{srv: s, nc: nc, lo: lo, raw: rawConn(nc)}
	c.dec.MaxSize = s.opt().MaxPacketSize
	c.dec.MaxUserProperties = s.opt().MaxUserProperties
	c.dec.Reuse = true
	s.mu.Lock()
	if s.closed || (s.opt().MaxConnections > 0 && len(s.conns) >= s.opt().MaxConnections) {
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			s.log.Warn("refusing connection: max connections reached", "remote", c.nc.RemoteAddr(), "max", s.opt().MaxConnections)
		}
		nc.Close()
		s.wg.Done()
		return
	}
	if lo.MaxConnections > 0 && lo.conns.Load() >= int64(lo.MaxConnections) {
		s.mu.Unlock()
		s.log.Warn("refusing connection: the listener's max connections reached", "listener", lo.Name, "remote", c.nc.RemoteAddr(), "max", lo.MaxConnections)
		nc.Close()
		s.wg.Done()
		return
	}
	lo.conns.Add(1)
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.stats.accepted.Add(1)

	connect, rest, err := c.readConnect()
	if err == nil {
		c.hsRest = rest
		err = s.connect(c, connect)
		rest, c.hsRest = c.hsRest, nil
	}
	if err != nil {
		// After a CONNACK refusal, close gracefully: the client reads
		// its reason code, not a reset (linger.go).
		linger := c.refused && c.closeLinger(nil)
		if !linger {
			c.closeWith(nil)
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		lo.conns.Add(-1)
		if linger {
			c.linger()
		}
		s.wg.Done()
		return
	}
	go c.readLoop(rest) // owns the wg count from here
}

// readConnect reads the first packet, which must be CONNECT [MQTT-3.1.0-1],
// and returns it with any bytes read beyond it.
func (c *conn) readConnect() (*packet.Connect, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opt().ConnectTimeout))
	buf := make([]byte, 0, 512)
	// The CONNECT's user properties, its will's included, are capped as
	// those of any later packet: the will lives as long as the connection.
	dec := packet.Decoder{MaxSize: c.srv.opt().MaxPacketSize, MaxUserProperties: c.srv.opt().MaxUserProperties}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.read(buf[len(buf):cap(buf)])
		c.srv.stats.bytesIn.Add(uint64(n))
		buf = buf[:len(buf)+n]
		if len(buf) > 0 && buf[0]>>4 != byte(packet.CONNECT) {
			c.srv.log.Info("closing connection: first packet is not CONNECT", "remote", c.nc.RemoteAddr()) // [MQTT-3.1.0-1]
			return nil, nil, errNotConnect
		}
		p, used, derr := dec.Decode(buf)
		if derr != nil {
			c.refuseConnect(buf, derr)
			return nil, nil, derr
		}
		if p != nil {
			var rest []byte
			if used < len(buf) { // most clients wait for CONNACK: nothing follows
				rest = append(getBuf(), buf[used:]...)
			}
			return p.(*packet.Connect), rest, nil
		}
		if err != nil {
			if isTimeout(err) {
				c.srv.log.Info("closing connection: no CONNECT within the connect timeout", "remote", c.nc.RemoteAddr(), "timeout", c.srv.opt().ConnectTimeout)
			}
			return nil, nil, err
		}
		// buf grows as bytes arrive (top of the loop), not to the size the
		// header announces: a silent client must not cost MaxPacketSize.
	}
}

var errNotConnect = errors.New("broker: first packet is not CONNECT")

// refuseConnect answers an invalid CONNECT. An unsupported protocol level
// gets CONNACK 0x01 (3.1.1) [MQTT-3.1.2-2] or 0x84 (5.0); other failures
// get a 5.0 CONNACK with the reason code from a 5.0 client
// [MQTT-3.1.4-1], and no CONNACK at all from older clients.
func (c *conn) refuseConnect(buf []byte, err error) {
	var perr *packet.Error
	if !errors.As(err, &perr) {
		return
	}
	level := connectLevel(buf)
	c.srv.log.Info("refusing CONNECT", "remote", c.nc.RemoteAddr(), "level", level, "reason", perr.Code.String(), "detail", perr.Msg)
	switch {
	case perr.Code == packet.UnsupportedProtocolVersion:
		c.version = packet.V311
		if level == packet.V5 {
			c.version = packet.V5
		}
		c.sendPacket(&packet.Connack{ReasonCode: packet.UnsupportedProtocolVersion})
		c.refused = true
	case level == packet.V5:
		c.version = packet.V5
		c.sendPacket(&packet.Connack{ReasonCode: perr.Code})
		c.refused = true
	}
}

// connectLevel peeks at the protocol level byte of a CONNECT in buf.
func connectLevel(buf []byte) byte {
	_, h, err := packet.Header(buf, 0)
	if err != nil || h == 0 || len(buf) < h+2 {
		return 0
	}
	at := h + 2 + (int(buf[h])<<8 | int(buf[h+1]))
	if at >= len(buf) {
		return 0
	}
	return buf[at]
}
