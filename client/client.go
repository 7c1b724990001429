package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Client is an MQTT client: one session with one server, over one network
// connection at a time. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	server  *url.URL
	version byte
	log     *slog.Logger

	// mu guards the fields below. Lock order: mu, then conn.wmu, then
	// the trie's own lock. No callback runs with mu held.
	mu          sync.Mutex
	cn          *conn         // live connection; nil while offline
	online      chan struct{} // closed while cn != nil; replaced when it goes
	started     bool          // Connect succeeded once
	closed      bool          // Disconnect or Close was called, or the client ended
	clientID    string        // as configured or assigned by the server
	ids         map[uint16]any
	lastID      uint16
	waiting     []*pubOp // QoS 1/2 publishes not yet sent, in order
	inflight    []*pubOp // QoS 1/2 publishes sent and not complete, in send order
	subOps      []*subOp // SUBSCRIBE and UNSUBSCRIBE awaiting their ack, in send order
	routes      map[string]*route
	trie        *topic.Trie[*route]
	matches     topic.Matches[*route]
	inbound2    map[uint16]*inbound2 // QoS 2 identifiers awaiting PUBREL [MQTT-4.3.3-9]
	lastConnack *packet.Connack

	doneErr error // why the client ended

	disp dispatcher

	ctx    context.Context // canceled when the client ends
	cancel context.CancelFunc
	quit   <-chan struct{} // ctx.Done()
	connWG sync.WaitGroup  // the goroutines of connections
	bg     sync.WaitGroup  // the supervisor and the dispatcher
}

// New returns a client for opts, not yet connected.
func New(opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	u, _ := parseServer(opts.Server)
	if opts.Username == "" && u.User != nil {
		opts.Username = u.User.Username()
		if pw, ok := u.User.Password(); ok && opts.Password == nil {
			opts.Password = []byte(pw)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		opts:     opts,
		server:   u,
		version:  opts.version(),
		log:      log.With("server", u.Redacted()),
		online:   make(chan struct{}),
		clientID: opts.ClientID,
		ids:      make(map[uint16]any),
		routes:   make(map[string]*route),
		trie:     topic.NewTrie[*route](topic.TrieOptions{}),
		inbound2: make(map[uint16]*inbound2),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.quit = c.ctx.Done()
	c.disp.init()
	return c, nil
}

// Dial creates a client and connects it: New followed by Connect.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect opens the first connection: it dials, sends CONNECT and waits for
// CONNACK, within ctx and Options.ConnectTimeout. A refusal is a
// *ConnackError. It is not retried, even with AutoReconnect; after a
// failure Connect may be called again.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return ErrConnected
	}
	c.mu.Unlock()
	cn, ack, err := c.connectOnce(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.started || c.closed {
		err := ErrConnected
		if c.closed {
			err = ErrClosed
		}
		c.mu.Unlock()
		cn.end(err)
		return err
	}
	c.started = true
	c.mu.Unlock()
	c.bg.Add(2)
	go c.dispatchLoop()
	go c.supervise(cn)
	if !c.install(cn, ack) {
		return ErrClosed
	}
	return nil
}

// connectOnce dials and runs the CONNECT/CONNACK handshake.
func (c *Client) connectOnce(ctx context.Context) (*conn, *packet.Connack, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(c.opts.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	where := "client: connect to " + c.server.Redacted()
	var nc net.Conn
	var err error
	if c.opts.Dialer != nil {
		nc, err = c.opts.Dialer(ctx)
	} else {
		nc, err = dialNetwork(ctx, c.server, &c.opts)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	cn := newConn(nc, c.version, &c.opts)
	c.mu.Lock()
	p := c.connectPacketLocked()
	c.mu.Unlock()
	ack, err := handshake(ctx, cn, p)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	ack.Properties = ack.Properties.Clone() // it aliases the read buffer
	if ack.ReasonCode.IsError() {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: %w", where, &ConnackError{
			Code:            ack.ReasonCode,
			ReasonString:    ack.Properties.ReasonString,
			ServerReference: ack.Properties.ServerReference,
		})
	}
	c.applyConnack(cn, ack)
	return cn, ack, nil
}

// connectPacketLocked builds CONNECT from the options. c.mu held.
func (c *Client) connectPacketLocked() *packet.Connect {
	o := &c.opts
	p := &packet.Connect{
		Version:    c.version,
		CleanStart: !o.ResumeSession,
		KeepAlive:  uint16(o.KeepAlive / time.Second),
		ClientID:   c.clientID,
		Username:   o.Username,
		Password:   o.Password,
	}
	p.UsernameFlag = o.Username != ""
	p.Bridge = o.TryPrivate && c.version < packet.V5
	p.PasswordFlag = o.Password != nil
	if w := o.Will; w != nil {
		p.WillFlag = true
		p.Will = packet.Will{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
		if c.version >= packet.V5 {
			p.Will.Properties = w.Properties
		}
	}
	if c.version >= packet.V5 {
		p.Properties = o.Properties.Clone()
		if o.ReceiveMaximum > 0 {
			p.Properties.SetUint(packet.PropReceiveMaximum, uint32(o.ReceiveMaximum))
		}
		if o.TopicAliasMaximum > 0 {
			p.Properties.SetUint(packet.PropTopicAliasMaximum, uint32(o.TopicAliasMaximum))
		} else {
			p.Properties.Present.Remove(packet.PropTopicAliasMaximum)
		}
		if o.MaxPacketSize > 0 {
			p.Properties.SetUint(packet.PropMaximumPacketSize, o.MaxPacketSize)
		}
	}
	return p
}

// applyConnack fixes the connection's limits from CONNACK.
func (c *Client) applyConnack(cn *conn, ack *packet.Connack) {
	pr := &ack.Properties
	cn.keepAlive = c.opts.KeepAlive
	if pr.Has(packet.PropServerKeepAlive) { // [MQTT-3.2.2-21]
		cn.keepAlive = time.Duration(pr.ServerKeepAlive) * time.Second
	}
	cn.pingTimeout = c.opts.PingTimeout
	if cn.pingTimeout == 0 {
		cn.pingTimeout = cn.keepAlive
	}
	cn.sendQuota = 65535
	if pr.Has(packet.PropReceiveMaximum) {
		cn.sendQuota = int(pr.ReceiveMaximum)
	}
	if c.opts.TopicAliases && pr.Has(packet.PropTopicAliasMaximum) {
		cn.aliasMax = pr.TopicAliasMaximum
	}
	if pr.Has(packet.PropMaximumPacketSize) {
		cn.maxPacket = int(pr.MaximumPacketSize)
	}
	cn.maxQoS = 2
	if pr.Has(packet.PropMaximumQoS) {
		cn.maxQoS = pr.MaximumQoS
	}
	cn.retainOK = !pr.Has(packet.PropRetainAvailable) || pr.RetainAvailable == 1
}

// install makes cn the live connection, restores the session on it and
// starts its goroutines. It reports false when the client ended meanwhile.
func (c *Client) install(cn *conn, ack *packet.Connack) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.end(ErrClosed)
		return false
	}
	if ack.Properties.AssignedClientID != "" {
		c.clientID = ack.Properties.AssignedClientID // reused on reconnect
	}
	c.lastConnack = ack
	c.cn = cn
	c.restoreLocked(cn, ack.SessionPresent)
	close(c.online)
	c.connWG.Add(3)
	go func() { defer c.connWG.Done(); c.readLoop(cn) }()
	go func() { defer c.connWG.Done(); cn.writeLoop() }()
	go func() { defer c.connWG.Done(); cn.keepAliveLoop() }()
	c.mu.Unlock()
	c.log.Debug("connected", "client_id", c.clientID, "session_present", ack.SessionPresent)
	if f := c.opts.OnConnect; f != nil {
		f(ack)
	}
	return true
}

// restoreLocked re-establishes the client's side of the session on a new
// connection. c.mu held.
func (c *Client) restoreLocked(cn *conn, sessionPresent bool) {
	inflight := c.inflight
	c.inflight = make([]*pubOp, 0, len(inflight))
	if !sessionPresent {
		// The server has no session: the client discards its session
		// state [MQTT-3.2.2-5]. A QoS 2 message whose PUBREC came back
		// was accepted by the server, so it is complete; the others are
		// sent again as new messages of the new session, since their
		// callers still wait for them.
		clear(c.inbound2)
		for _, op := range inflight {
			if op.state == pubReleased || op.state == pubReceived {
				c.finishLocked(op, nil)
			}
		}
		c.resubscribeLocked(cn)
	}
	for _, op := range c.subOps { // unanswered SUBSCRIBE/UNSUBSCRIBE, same identifiers
		if op.sentOn != cn {
			cn.send(op.packet())
			op.sentOn = cn
		}
	}
	// Unacknowledged PUBLISH (DUP) and PUBREL packets go again, in their
	// original order [MQTT-4.4.0-1] [MQTT-4.6.0-1], up to the new quota;
	// the rest wait at the head of the queue.
	var requeue []*pubOp
	for _, op := range inflight {
		switch {
		case op.finished:
		case op.state == pubReleased:
			c.inflight = append(c.inflight, op)
			cn.send(&packet.Pubrel{PacketID: op.p.PacketID})
		case op.state == pubReceived:
			c.inflight = append(c.inflight, op) // PUBREL once the caller releases it
		case len(c.inflight) >= cn.sendQuota:
			op.state = pubWaiting
			requeue = append(requeue, op)
		default:
			if err := c.writePublishLocked(cn, op); err != nil {
				c.finishLocked(op, err)
				continue
			}
			c.inflight = append(c.inflight, op)
		}
	}
	if len(requeue) > 0 {
		c.waiting = append(requeue, c.waiting...)
	}
	c.fillLocked()
}

// supervise watches the live connection; when it ends it reconnects or
// ends the client.
func (c *Client) supervise(cn *conn) {
	defer c.bg.Done()
	for {
		select {
		case <-cn.done:
		case <-c.quit:
			return
		}
		err := lostError(cn.err)
		c.mu.Lock()
		if c.cn == cn {
			c.cn = nil
			c.online = make(chan struct{})
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		c.log.Info("connection lost", "error", cn.err)
		if f := c.opts.OnConnectionLost; f != nil {
			f(err)
		}
		if !c.opts.AutoReconnect {
			c.shutdown(err)
			return
		}
		if cn = c.reconnect(); cn == nil {
			return
		}
	}
}

// reconnect dials until a connection is installed, with exponential
// backoff and jitter; it returns nil when the client ends first.
func (c *Client) reconnect() *conn {
	lo := orDefault(c.opts.ReconnectMin, DefaultReconnectMin)
	hi := max(orDefault(c.opts.ReconnectMax, DefaultReconnectMax), lo)
	delay := lo
	for attempt := 1; ; attempt++ {
		wait := delay/2 + rand.N(delay/2+1) // jitter in the upper half
		t := time.NewTimer(wait)
		select {
		case <-c.quit:
			t.Stop()
			return nil
		case <-t.C:
		}
		cn, ack, err := c.connectOnce(c.ctx)
		if err == nil && c.install(cn, ack) {
			c.log.Info("reconnected", "attempt", attempt, "session_present", ack.SessionPresent)
			return cn
		}
		if err == nil { // ended meanwhile
			return nil
		}
		c.log.Info("reconnect failed", "attempt", attempt, "error", err, "retry_in", delay)
		delay = min(2*delay, hi)
	}
}

// Disconnect ends the client normally: it sends DISCONNECT with reason
// (5.0; ignored before), waits within ctx for it to be written, and closes
// the connection. The server discards the will unless reason is
// packet.DisconnectWithWill. Calls waiting on the client return ErrClosed;
// unfinished QoS 1 and 2 messages are dropped. Disconnect does not wait
// for a running message handler to return, so a handler may call it.
func (c *Client) Disconnect(ctx context.Context, reason packet.ReasonCode) error {
	return c.DisconnectWith(ctx, &packet.Disconnect{ReasonCode: reason})
}

// DisconnectWith is Disconnect with a DISCONNECT of the caller's, for 5.0
// properties such as a new Session Expiry Interval or User Properties.
func (c *Client) DisconnectWith(ctx context.Context, d *packet.Disconnect) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	cn := c.cn
	var err error
	if cn != nil {
		err = cn.send(d)
		cn.closeAfterFlush()
	}
	c.mu.Unlock()
	if cn != nil && err == nil {
		select {
		case <-cn.done:
		case <-ctx.Done():
			err = fmt.Errorf("client: disconnect: %w", ctx.Err())
		}
	}
	c.shutdown(ErrClosed)
	if err != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("client: disconnect: %w", err)
	}
	return err
}

// Close ends the client at once, without DISCONNECT: to the server this is
// a network failure, so it publishes the will. Calls waiting on the client
// return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	c.shutdown(ErrClosed)
	return nil
}

// shutdown ends the client: it closes the connection, fails every waiting
// call with err, stops the goroutines and waits for those of the
// connection. It does not wait for the dispatcher, which may be the caller.
func (c *Client) shutdown(err error) {
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.doneErr = err
	c.cancel()
	cn := c.cn
	c.cn = nil
	for _, op := range c.inflight {
		c.finishLocked(op, err)
	}
	for _, op := range c.waiting {
		c.finishLocked(op, err)
	}
	c.inflight, c.waiting = nil, nil
	for _, op := range c.subOps {
		op.finish(err)
	}
	c.subOps = nil
	clear(c.ids)
	c.mu.Unlock()
	if cn != nil {
		cn.end(err)
	}
	c.connWG.Wait()
}

// Done returns a channel closed when the client has ended: after
// Disconnect or Close, or when the connection was lost without
// AutoReconnect. Err then says why.
func (c *Client) Done() <-chan struct{} { return c.quit }

// Err returns why the client ended (ErrClosed after Disconnect or Close, an
// error wrapping ErrConnectionLost otherwise), or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doneErr
}

// IsConnected reports whether a connection is live now.
func (c *Client) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cn != nil
}

// ClientID returns the client identifier in use: the configured one, or the
// one the server assigned.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Connack returns the CONNACK of the latest connection, with the server's
// limits in its properties (5.0), or nil before the first connection. It
// must not be modified.
func (c *Client) Connack() *packet.Connack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastConnack
}

// waitOnline returns the live connection, waiting for a reconnect within
// ctx when there is none. c.mu is held on return when err is nil.
func (c *Client) waitOnline(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			err := c.endErrLocked()
			c.mu.Unlock()
			return nil, err
		}
		if c.cn != nil {
			return c.cn, nil
		}
		if !c.started {
			c.mu.Unlock()
			return nil, errors.New("client: not connected: call Connect first")
		}
		online := c.online
		c.mu.Unlock()
		select {
		case <-online:
		case <-c.quit:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// endErrLocked is the error for calls on an ended client. c.mu held.
func (c *Client) endErrLocked() error {
	if c.doneErr != nil {
		return c.doneErr
	}
	return ErrClosed
}

// allocIDLocked returns a free packet identifier for v, or 0 when all
// 65535 are in use [MQTT-2.3.1-2]. c.mu held.
func (c *Client) allocIDLocked(v any) uint16 {
	if len(c.ids) >= 65535 {
		return 0
	}
	for {
		c.lastID++
		if c.lastID == 0 {
			c.lastID = 1
		}
		if _, used := c.ids[c.lastID]; !used {
			c.ids[c.lastID] = v
			return c.lastID
		}
	}
}
