package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/client"
	"github.com/gannet-mqtt/gannet/packet"
)

// State is a bridge's connection state.
type State string

// The states of a bridge.
const (
	StateStarting     State = "starting"
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StateDisconnected State = "disconnected" // lost, reconnecting
	StateIdle         State = "idle"         // lazy, waiting for messages
	StateStopped      State = "stopped"      // once, after the connection ended; or stopped
)

// Info describes one bridge for $SYS, metrics and the admin API.
type Info struct {
	Name      string `json:"name"`
	State     State  `json:"state"`
	Address   string `json:"address,omitempty"` // the remote address connected to
	Version   byte   `json:"protocol_version"`
	StartType string `json:"start_type"`
	Queued    int    `json:"queued"`   // messages waiting for the remote in the local session
	Sent      uint64 `json:"sent"`     // messages delivered to the remote
	Received  uint64 `json:"received"` // messages from the remote made durable locally
	Dropped   uint64 `json:"dropped"`  // messages not forwarded (QoS 0 while offline, refused, too large, queue full)
	Looped    uint64 `json:"looped"`   // echoes of our own messages dropped by the loop guard
	Connects  uint64 `json:"connects"`
}

// Bridge is one running bridge: a client of the local broker (over an
// in-process pipe) and a client of the remote broker.
//
// Messages bound for the remote are received by the local client and
// acknowledged to the local broker only once the remote acknowledged them:
// until then they stay in the bridge's persistent local session, in the
// store, so they survive the remote's absence and a restart of the local
// broker, and go out in order. Messages from the remote are published to
// the local broker and acknowledged to the remote only once the local
// broker acknowledged them, which it does once they are durable.
type Bridge struct {
	cfg   Config
	srv   *broker.Server
	pipe  *pipeListener
	log   *slog.Logger
	guard *loopGuard

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	local *client.Client

	mu         sync.Mutex
	remote     *client.Client // nil while not connected (lazy idle, once ended, connecting)
	changed    chan struct{}  // closed and replaced when remote changes
	state      State          // under mu
	addrIdx    int            // index of the address of conn
	conn       net.Conn       // the remote transport in use
	nextAddr   int            // round robin: where the next dial starts
	tryPrivate atomic.Bool    // cleared when the remote refuses it
	remoteNote atomic.Bool    // notifications on the remote; cleared when it refuses the will
	tlsConf    *tls.Config
	pending    atomic.Int64 // lazy: QoS 0 messages seen while idle
	lastActive atomic.Int64 // unix nanos of the last message either way
	restartReq chan struct{}
	outq       chan outItem // fromLocal to ackLoop, in order
	ackDone    chan struct{}
	inq        chan inItem // fromRemote to inLoop, in order
	inDone     chan struct{}
	syncMode   atomic.Bool // ackLoop is publishing one by one to keep the order
	out2, in2  *qos2Relay  // the PUBREL/PUBCOMP half of QoS 2 exchanges, each way (qos2.go)
	relWG      sync.WaitGroup

	sent, received, dropped, looped, connects atomic.Uint64
}

// localReceiveMaximum bounds the messages of the local broker on their way
// to the remote, unacknowledged locally: the bridge's local client
// announces it, and the bridges' listener lifts the broker's own
// max_inflight (64 by default, meant for ordinary clients) to it, so that
// up to this many messages are in flight to a remote whose Receive Maximum
// allows them. The messages stay in the local session, in the store, until
// the remote acknowledged them, whatever the window.
const localReceiveMaximum = 1000

// start builds and starts a bridge. cfg must be valid (Validate).
func start(cfg Config, srv *broker.Server, pipe *pipeListener, log *slog.Logger) (*Bridge, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg: cfg, srv: srv, pipe: pipe, log: log.With("bridge", cfg.Name),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{}), state: StateStarting,
		restartReq: make(chan struct{}, 1),
		outq:       make(chan outItem, localReceiveMaximum),
		ackDone:    make(chan struct{}),
		inq:        make(chan inItem, 1024),
		inDone:     make(chan struct{}),
	}
	b.tryPrivate.Store(cfg.TryPrivate)
	b.remoteNote.Store(cfg.Notifications && !cfg.NotificationsLocalOnly)
	if cfg.Transport == "tls" || cfg.Transport == "wss" {
		tc, err := tlsConfig(&cfg.TLS)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("bridge %q: %w", cfg.Name, err)
		}
		b.tlsConf = tc
	}
	if cfg.Version < packet.V5 && hasIn(cfg) && hasOut(cfg) {
		// Used while try_private is off or refused: a remote that
		// accepted it sends none of our messages back.
		b.guard = newLoopGuard()
	}
	b.touch()
	if cfg.Notifications {
		b.notifyLocal(false)
	}
	b.out2 = newQoS2Relay("outgoing", b.waitRemote, b.log)
	b.in2 = newQoS2Relay("incoming", func(context.Context) (*client.Client, error) { return b.local, nil }, b.log)
	srv.SetSessionByteCap(cfg.LocalClientID, cfg.QueueMaxBytes)
	if err := b.startLocal(); err != nil {
		srv.SetSessionByteCap(cfg.LocalClientID, 0)
		cancel()
		return nil, err
	}
	b.relWG.Add(2)
	go func() { defer b.relWG.Done(); b.out2.run(b.ctx) }()
	go func() { defer b.relWG.Done(); b.in2.run(b.ctx) }()
	go b.ackLoop()
	go b.inLoop()
	go b.run()
	return b, nil
}

func hasIn(c Config) bool {
	for _, r := range c.Rules {
		if r.in() {
			return true
		}
	}
	return false
}

func hasOut(c Config) bool {
	for _, r := range c.Rules {
		if r.out() {
			return true
		}
	}
	return false
}

// startLocal connects the bridge's client to the local broker and
// subscribes to the out rules.
func (b *Bridge) startLocal() error {
	o := client.DefaultOptions()
	o.Server = "mqtt://bridge.local:1883" // names the broker in errors; Dialer connects
	o.Dialer = b.pipe.dial
	o.Version = packet.V5
	o.ClientID = b.cfg.LocalClientID
	o.ResumeSession = !b.cfg.LocalCleanSession
	if o.ResumeSession {
		o.Properties.SetUint(packet.PropSessionExpiry, 0xFFFFFFFF) // the queue for the remote must outlive restarts
	}
	o.KeepAlive = 0
	o.AutoReconnect = true
	o.ReconnectMin, o.ReconnectMax = 10*time.Millisecond, time.Second
	o.ReceiveMaximum = localReceiveMaximum
	o.ManualAck = true
	o.OnMessage = b.fromLocal
	o.OnRelease = func(id uint16, complete func()) { b.out2.release(b.ctx, id, complete) }
	o.Logger = b.log
	lc, err := client.New(o)
	if err != nil {
		return fmt.Errorf("bridge %q: local client: %w", b.cfg.Name, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := lc.Connect(ctx); err != nil {
		return fmt.Errorf("bridge %q: connect to the local broker: %w", b.cfg.Name, err)
	}
	b.local = lc
	want := map[string]bool{}
	var subs []client.Subscription
	for _, r := range b.cfg.Rules {
		if !r.out() || want[r.LocalFilter()] {
			continue
		}
		want[r.LocalFilter()] = true
		subs = append(subs, client.Subscription{
			Filter: r.LocalFilter(), QoS: r.QoS,
			NoLocal:           true, // what came in over the bridge does not go back out
			RetainAsPublished: true,
			RetainHandling:    1, // retained messages once, when the subscription is new
		})
	}
	// A persistent session keeps the filters of an earlier configuration:
	// drop those no rule wants any more.
	if _, old, ok := b.srv.Client(b.cfg.LocalClientID); ok {
		var stale []string
		for _, s := range old {
			if !want[s.Filter] {
				stale = append(stale, s.Filter)
			}
		}
		if len(stale) > 0 {
			if _, err := lc.Unsubscribe(ctx, stale...); err != nil {
				b.log.Warn("cannot drop the local subscriptions of removed topic rules", "filters", stale, "error", err)
			}
		}
	}
	if len(subs) > 0 {
		if _, err := lc.Subscribe(ctx, subs...); err != nil {
			lc.Close()
			return fmt.Errorf("bridge %q: subscribe on the local broker: %w", b.cfg.Name, err)
		}
	}
	return nil
}

// stop ends the bridge. The local client goes first, so that a message
// whose forwarding is cut short is not acknowledged locally: it stays in
// the local session for the next start.
func (b *Bridge) stop() {
	if b.local != nil {
		b.local.Close()
	}
	b.cancel()
	<-b.done
	<-b.ackDone
	<-b.inDone
	b.relWG.Wait()
	if b.cfg.Notifications {
		b.notifyLocal(false)
	}
	b.srv.SetSessionByteCap(b.cfg.LocalClientID, 0)
	b.setState(StateStopped)
}

// Restart drops the remote connection and connects again at once.
func (b *Bridge) Restart() {
	// Take the connection in use before asking for the restart: once asked,
	// a new connection may be made at once, and it must not be the one closed.
	b.mu.Lock()
	nc := b.conn
	b.mu.Unlock()
	select {
	case b.restartReq <- struct{}{}:
	default:
	}
	if nc != nil {
		nc.Close()
	}
}

func (b *Bridge) touch() { b.lastActive.Store(time.Now().UnixNano()) }

func (b *Bridge) setState(s State) {
	b.mu.Lock()
	b.state = s
	b.mu.Unlock()
}

// setRemote installs (or, with nil, removes) the remote client and wakes
// the handlers waiting for one.
func (b *Bridge) setRemote(rc *client.Client, s State) {
	b.mu.Lock()
	b.remote = rc
	b.state = s
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

func (b *Bridge) currentRemote() (*client.Client, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remote, b.changed
}

// waitRemote returns the remote client, waiting within ctx for one.
func (b *Bridge) waitRemote(ctx context.Context) (*client.Client, error) {
	for {
		rc, changed := b.currentRemote()
		if rc != nil {
			return rc, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Info describes the bridge now.
func (b *Bridge) Info() Info {
	b.mu.Lock()
	in := Info{Name: b.cfg.Name, State: b.state, Version: b.cfg.Version, StartType: string(b.cfg.StartType)}
	if b.state == StateConnected {
		in.Address = b.cfg.Addresses[b.addrIdx]
	}
	b.mu.Unlock()
	in.Sent, in.Received, in.Dropped = b.sent.Load(), b.received.Load(), b.dropped.Load()
	in.Looped, in.Connects = b.looped.Load(), b.connects.Load()
	if ci, _, ok := b.srv.Client(b.cfg.LocalClientID); ok {
		in.Queued = ci.Inflight + ci.Queued
		in.Dropped += ci.Dropped // queue full: queue_max_bytes, limits.max_queued(_bytes)
	}
	return in
}

// waiting counts the messages of the local session not yet acknowledged
// by the remote.
func (b *Bridge) waiting() int {
	ci, _, ok := b.srv.Client(b.cfg.LocalClientID)
	if !ok {
		return 0
	}
	return ci.Inflight + ci.Queued
}

// run manages the remote connection for the bridge's start type.
func (b *Bridge) run() {
	defer close(b.done)
	defer func() {
		if rc, _ := b.currentRemote(); rc != nil {
			rc.Close()
		}
	}()
	go b.primaryWatch()
	switch b.cfg.StartType {
	case Lazy:
		for b.ctx.Err() == nil {
			b.setRemote(nil, StateIdle)
			if !b.waitThreshold() {
				return
			}
			rc := b.connect(true)
			if rc == nil {
				return
			}
			b.waitIdle(rc)
		}
	case Once:
		rc := b.connect(false)
		if rc == nil {
			return
		}
		select {
		case <-rc.Done():
			b.setRemote(nil, StateStopped)
			b.log.Warn("bridge connection ended; start_type once does not reconnect (restart it from the admin API or reload)", "error", rc.Err())
			if b.cfg.Notifications {
				b.notifyLocal(false)
			}
		case <-b.ctx.Done():
		}
		select {
		case <-b.ctx.Done():
		case <-b.restartReq:
			go b.restartOnce()
		}
	default:
		rc := b.connect(true)
		if rc == nil {
			return
		}
		<-b.ctx.Done()
	}
}

// restartOnce runs a once bridge's connection again, on a restart request.
func (b *Bridge) restartOnce() {
	// The run goroutine has ended its case; connect again under done's
	// accounting is not possible, so this runs detached but bounded by ctx.
	rc := b.connect(false)
	if rc == nil {
		return
	}
	select {
	case <-rc.Done():
		b.setRemote(nil, StateStopped)
	case <-b.ctx.Done():
		rc.Close()
	}
}

// waitThreshold waits (lazy) until Threshold messages wait for the remote.
func (b *Bridge) waitThreshold() bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if b.waiting()+int(b.pending.Load()) >= b.cfg.Threshold {
			b.pending.Store(0)
			return true
		}
		select {
		case <-b.ctx.Done():
			return false
		case <-b.restartReq:
			return true
		case <-t.C:
		}
	}
}

// waitIdle waits (lazy) until the connection saw no message for
// IdleTimeout, then disconnects.
func (b *Bridge) waitIdle(rc *client.Client) {
	t := time.NewTicker(min(b.cfg.IdleTimeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, b.lastActive.Load()))
		if idle >= b.cfg.IdleTimeout && b.waiting() == 0 {
			b.log.Info("lazy bridge idle, disconnecting", "idle", idle.Round(time.Second))
			if b.remoteNote.Load() {
				ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
				rc.Publish(ctx, b.cfg.NotificationTopic, []byte("0"), client.PublishOptions{QoS: 1, Retain: true})
				cancel()
			}
			b.setRemote(nil, StateIdle)
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			rc.Disconnect(ctx, packet.Success)
			cancel()
			if b.cfg.Notifications {
				b.notifyLocal(false)
			}
			return
		}
	}
}

// connect connects to the remote, retrying with backoff and jitter until
// it succeeds or the bridge stops (nil).
func (b *Bridge) connect(reconnect bool) *client.Client {
	delay := b.cfg.RestartMin
	for {
		b.setState(StateConnecting)
		rc, err := b.dialRemote(reconnect)
		if err == nil {
			return rc
		}
		if b.ctx.Err() != nil {
			return nil
		}
		var ce *client.ConnackError
		if errors.As(err, &ce) && ce.Code == packet.UnsupportedProtocolVersion && b.tryPrivate.Load() {
			b.log.Info("the remote refused try_private; connecting as an ordinary client")
			b.tryPrivate.Store(false)
			b.retrySame()
			continue
		}
		if errors.As(err, &ce) && ce.Code == packet.NotAuthorized && b.remoteNote.Load() {
			b.log.Warn("the remote refused the notification topic as will; connecting without remote notifications (set notifications_local_only, or allow the topic on the remote)", "topic", b.cfg.NotificationTopic)
			b.remoteNote.Store(false)
			b.retrySame()
			continue
		}
		wait := delay/2 + rand.N(delay/2+1)
		b.log.Warn("cannot connect to the remote broker; retrying", "addresses", b.cfg.Addresses, "error", err, "retry_in", wait.Round(time.Millisecond))
		b.setState(StateDisconnected)
		select {
		case <-b.ctx.Done():
			return nil
		case <-time.After(wait):
		case <-b.restartReq:
		}
		delay = min(2*delay, b.cfg.RestartMax)
	}
}

// retrySame makes the next dial start at the address just refused.
func (b *Bridge) retrySame() {
	b.mu.Lock()
	b.nextAddr = b.addrIdx
	b.mu.Unlock()
}

// remoteOptions builds the remote client's options.
func (b *Bridge) remoteOptions(reconnect bool) (client.Options, error) {
	c := &b.cfg
	o := client.DefaultOptions()
	o.Server = b.url(0)
	o.Version = c.Version
	o.ClientID = c.RemoteClientID
	o.Username = c.RemoteUsername
	if c.RemotePassword != "" {
		o.Password = []byte(c.RemotePassword)
	}
	o.ResumeSession = !c.CleanSession
	if c.Version >= packet.V5 && !c.CleanSession {
		exp := uint32(c.SessionExpiry / time.Second)
		if c.SessionExpiry == 0 {
			exp = 0xFFFFFFFF
		}
		o.Properties.SetUint(packet.PropSessionExpiry, exp)
	}
	o.KeepAlive = c.KeepAlive
	o.AutoReconnect = reconnect
	o.ReconnectMin, o.ReconnectMax = c.RestartMin, c.RestartMax
	o.MaxPacketSize = c.MaxPacketSize
	o.ReceiveMaximum = c.ReceiveMaximum
	o.TopicAliasMaximum = c.MaxTopicAlias
	o.TopicAliases = true // up to the remote's Topic Alias Maximum
	o.TryPrivate = b.tryPrivate.Load() && c.Version < packet.V5
	o.Logger = b.log
	o.TLSConfig = b.tlsConf
	if b.remoteNote.Load() {
		o.Will = &client.Will{Topic: c.NotificationTopic, Payload: []byte("0"), QoS: 1, Retain: true}
	}
	o.Dialer = b.dial
	o.OnConnect = b.onConnect
	o.OnConnectionLost = b.onLost
	o.OnMessage = b.fromRemote
	o.ManualAck = true
	o.OnRelease = func(id uint16, complete func()) { b.in2.release(b.ctx, id, complete) }
	return o, nil
}

// url is the client URL of address i.
func (b *Bridge) url(i int) string {
	a := b.cfg.Addresses[i]
	switch b.cfg.Transport {
	case "tls":
		return "mqtts://" + a
	case "ws", "wss":
		p := b.cfg.WebSocketPath
		if p == "" {
			p = "/mqtt"
		}
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		return b.cfg.Transport + "://" + a + p
	}
	return "mqtt://" + a
}

// dial opens the transport to the remote: primary first (or, round robin,
// from the address after the last one), each address in turn.
func (b *Bridge) dial(ctx context.Context) (net.Conn, error) {
	n := len(b.cfg.Addresses)
	b.mu.Lock()
	first := 0
	if b.cfg.RoundRobin {
		first = b.nextAddr % n
	}
	b.mu.Unlock()
	o := client.Options{TLSConfig: b.tlsConf}
	var errs []error
	for k := 0; k < n; k++ {
		i := (first + k) % n
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nc, err := client.DialServer(dctx, b.url(i), &o)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.cfg.Addresses[i], err))
			continue
		}
		b.log.Debug("dialled the remote", "address", b.cfg.Addresses[i], "local", nc.LocalAddr().String())
		b.mu.Lock()
		b.addrIdx, b.conn, b.nextAddr = i, nc, i+1
		b.mu.Unlock()
		return nc, nil
	}
	if b.cfg.RoundRobin {
		b.mu.Lock()
		b.nextAddr = first + 1
		b.mu.Unlock()
	}
	return nil, errors.Join(errs...)
}

func (b *Bridge) dialRemote(reconnect bool) (*client.Client, error) {
	o, err := b.remoteOptions(reconnect)
	if err != nil {
		return nil, err
	}
	rc, err := client.New(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := rc.Connect(ctx); err != nil {
		return nil, err
	}
	// Subscriptions: once; the client makes them again on a reconnect that
	// finds no session.
	var subs []client.Subscription
	seen := map[string]bool{}
	for _, r := range b.cfg.Rules {
		if !r.in() || seen[r.RemoteFilter()] {
			continue
		}
		seen[r.RemoteFilter()] = true
		subs = append(subs, client.Subscription{Filter: r.RemoteFilter(), QoS: r.QoS,
			NoLocal: b.cfg.Version >= packet.V5, RetainAsPublished: b.cfg.Version >= packet.V5})
	}
	if len(subs) > 0 {
		if _, err := rc.Subscribe(ctx, subs...); err != nil {
			rc.Close()
			return nil, fmt.Errorf("subscribe on the remote: %w", err)
		}
	}
	if b.cfg.AttemptUnsubscribe && !b.cfg.CleanSession {
		var stale []string
		for _, r := range b.cfg.Rules {
			if r.Direction == Out && !seen[r.RemoteFilter()] {
				stale = append(stale, r.RemoteFilter())
				seen[r.RemoteFilter()] = true
			}
		}
		if len(stale) > 0 {
			rc.Unsubscribe(ctx, stale...) // best effort, as Mosquitto
		}
	}
	b.touch()
	b.setRemote(rc, StateConnected)
	return rc, nil
}

// onConnect runs after every connection to the remote.
func (b *Bridge) onConnect(*packet.Connack) {
	b.connects.Add(1)
	b.mu.Lock()
	addr := b.cfg.Addresses[b.addrIdx]
	if b.remote != nil {
		b.state = StateConnected
	}
	b.mu.Unlock()
	b.log.Info("bridge connected", "address", addr)
	if !b.cfg.Notifications {
		return
	}
	b.notifyLocal(true)
	if b.remoteNote.Load() {
		go func() {
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			defer cancel()
			// On the first connection the client is installed once its
			// subscriptions are made: wait for it.
			rc, changed := b.currentRemote()
			for rc == nil {
				select {
				case <-changed:
				case <-ctx.Done():
					return
				}
				rc, changed = b.currentRemote()
			}
			if err := rc.Publish(ctx, b.cfg.NotificationTopic, []byte("1"), client.PublishOptions{QoS: 1, Retain: true}); err != nil && b.ctx.Err() == nil {
				b.log.Debug("remote notification not published", "error", err)
			}
		}()
	}
}

func (b *Bridge) onLost(err error) {
	b.mu.Lock()
	if b.remote != nil {
		b.state = StateDisconnected
	}
	b.mu.Unlock()
	if b.ctx.Err() == nil {
		b.log.Warn("bridge connection lost; reconnecting", "error", err)
	}
	if b.cfg.Notifications {
		b.notifyLocal(false)
	}
}

// notifyLocal publishes the bridge's state, retained, on the local broker.
func (b *Bridge) notifyLocal(up bool) {
	p := []byte("0")
	if up {
		p = []byte("1")
	}
	if err := b.srv.Publish(b.cfg.NotificationTopic, p, 1, true); err != nil {
		b.log.Warn("cannot publish the bridge's state", "topic", b.cfg.NotificationTopic, "error", err)
	}
}

// primaryWatch (primary first, several addresses) goes back to the
// primary as soon as it answers while connected to another address.
func (b *Bridge) primaryWatch() {
	if b.cfg.RoundRobin || len(b.cfg.Addresses) < 2 {
		return
	}
	t := time.NewTicker(b.cfg.PrimaryRetry)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		away := b.state == StateConnected && b.addrIdx != 0
		nc := b.conn
		b.mu.Unlock()
		if !away {
			continue
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		probe, err := d.DialContext(b.ctx, "tcp", b.cfg.Addresses[0])
		if err != nil {
			continue
		}
		probe.Close()
		b.log.Info("the primary address answers again; moving back to it", "primary", b.cfg.Addresses[0])
		nc.Close() // the client reconnects, and dial tries the primary first
	}
}

// outRule finds the first out rule whose local filter matches t.
func (b *Bridge) outRule(t string) (Rule, bool) {
	for _, r := range b.cfg.Rules {
		if r.out() && match(r.LocalFilter(), t) {
			return r, true
		}
	}
	return Rule{}, false
}

func (b *Bridge) inRule(t string) (Rule, bool) {
	for _, r := range b.cfg.Rules {
		if r.in() && match(r.RemoteFilter(), t) {
			return r, true
		}
	}
	return Rule{}, false
}

// forwardProps keeps the 5.0 properties that travel with a message.
func forwardProps(p *packet.Properties, to byte) packet.Properties {
	var out packet.Properties
	if to < packet.V5 {
		return out
	}
	if p.Has(packet.PropPayloadFormat) {
		out.SetUint(packet.PropPayloadFormat, uint32(p.PayloadFormat))
	}
	if p.Has(packet.PropMessageExpiry) {
		out.SetUint(packet.PropMessageExpiry, p.MessageExpiry)
	}
	if p.Has(packet.PropContentType) {
		out.SetString(packet.PropContentType, p.ContentType)
	}
	if p.Has(packet.PropResponseTopic) {
		out.SetString(packet.PropResponseTopic, p.ResponseTopic)
	}
	if p.Has(packet.PropCorrelationData) {
		out.SetBinary(packet.PropCorrelationData, p.CorrelationData)
	}
	out.User = append(out.User, p.User...)
	return out
}

// outItem is a QoS 1 or 2 message of the local broker on its way to the
// remote, in the order of arrival.
type outItem struct {
	m    *client.Message
	rt   string           // the topic on the remote
	pend *client.Pending  // the queued publish (QoS 1); with x nil too: not queued, publish in turn
	x    *client.Exchange // QoS 2 on the remote: the exchange (queued until PUBREC), released when the local broker releases m
	drop bool             // refused before sending: acknowledge locally, count as dropped
}

// queued reports whether it's message is queued on a remote client.
func (it *outItem) queued() bool { return it.pend != nil || it.x != nil }

// waitAck waits for the acknowledgement of a queued message (the remote's,
// or the local broker's for one from the remote):
// PUBACK, or PUBREC for QoS 2.
func waitAck(ctx context.Context, pend *client.Pending, x *client.Exchange) error {
	if pend != nil {
		return pend.Wait(ctx)
	}
	return x.Received(ctx)
}

// fromLocal forwards a message of the local broker to the remote. A QoS 1
// or 2 message is queued on the remote client at once (so that many are
// in flight, up to the remote's Receive Maximum) and handed to ackLoop,
// which acknowledges it locally, in order, only once the remote
// acknowledged it. When the bridge stops first the local client is closed
// before, so the message stays in the local session.
func (b *Bridge) fromLocal(m *client.Message) {
	r, ok := b.outRule(m.Topic)
	if !ok {
		m.Ack()
		return
	}
	b.touch()
	rt := r.RemotePrefix + strings.TrimPrefix(m.Topic, r.LocalPrefix)
	if m.QoS == 0 {
		rc, _ := b.currentRemote()
		if rc == nil || !rc.IsConnected() {
			b.dropped.Add(1) // QoS 0 does not wait for the remote
			if b.cfg.StartType == Lazy {
				b.pending.Add(1)
			}
			return
		}
		qos, opts := b.publishOptions(rc, m)
		opts.QoS = qos
		if b.guard != nil && !b.tryPrivate.Load() {
			b.guard.sent(rt, m.Payload)
		}
		if err := rc.Publish(b.ctx, rt, m.Payload, opts); err == nil {
			b.sent.Add(1)
		} else {
			b.dropped.Add(1)
		}
		return
	}
	it := outItem{m: m, rt: rt}
	if b.cfg.MaxPacketSize > 0 && uint32(len(rt)+len(m.Payload)+8) > b.cfg.MaxPacketSize {
		b.log.Warn("message too large for the bridge's max_packet_size; dropped", "topic", m.Topic, "bytes", len(m.Payload))
		it.drop = true
	} else if rc, _ := b.currentRemote(); rc != nil && !b.syncMode.Load() {
		qos, _ := b.publishOptions(rc, m)
		if qos > 0 {
			pend, x, err := b.sendRemote(rc, &it, m.Dup)
			switch {
			case err == nil:
				it.pend, it.x = pend, x
			case refused(err):
				b.log.Warn("the remote cannot take a message; dropped", "topic", rt, "error", err)
				it.drop = true
			}
		}
	}
	select {
	case b.outq <- it:
	case <-b.ctx.Done():
	}
}

// refused reports an error that sending again would not cure.
func refused(err error) bool {
	var re *client.ReasonError
	return errors.As(err, &re) || errors.Is(err, client.ErrPacketTooLarge) || errors.Is(err, client.ErrQoSNotSupported) ||
		errors.Is(err, client.ErrRetainNotSupported) || errors.Is(err, client.ErrInvalidTopic)
}

// publishOptions are the QoS (capped by the remote's Maximum QoS), retain
// flag and properties m goes to the remote with.
func (b *Bridge) publishOptions(rc *client.Client, m *client.Message) (byte, client.PublishOptions) {
	qos := m.QoS
	retain := m.Retain && b.cfg.OutgoingRetain
	if ack := rc.Connack(); ack != nil {
		if ack.Properties.Has(packet.PropMaximumQoS) {
			qos = min(qos, ack.Properties.MaximumQoS)
		}
		if retain && ack.Properties.Has(packet.PropRetainAvailable) && ack.Properties.RetainAvailable == 0 {
			retain = false
		}
	}
	return qos, client.PublishOptions{Retain: retain, Properties: forwardProps(&m.Properties, b.cfg.Version)}
}

// ackLoop completes the messages of fromLocal in order: it waits for the
// remote's acknowledgement of each, publishes again in turn one that
// could not be queued or whose client ended, and then acknowledges it to
// the local broker.
func (b *Bridge) ackLoop() {
	defer close(b.ackDone)
	for {
		var it outItem
		select {
		case it = <-b.outq:
		case <-b.ctx.Done():
			return
		}
		if it.drop {
			b.dropped.Add(1)
			b.ackLocal(it.m, nil)
			continue
		}
		err := errNotQueued
		if it.queued() {
			err = waitAck(b.ctx, it.pend, it.x)
		}
		for err != nil {
			if b.ctx.Err() != nil {
				return // not acknowledged: it stays in the local session
			}
			if refused(err) {
				b.dropped.Add(1)
				b.log.Warn("the remote refused a message; dropped", "topic", it.rt, "error", err)
				it.x = nil
				break
			}
			// Until the queue is empty again, messages are published one
			// by one, here, so that they keep their order.
			b.syncMode.Store(true)
			err = b.publishNow(&it)
		}
		if err == nil {
			b.sent.Add(1)
			b.touch()
		}
		b.ackLocal(it.m, it.x)
		if len(b.outq) == 0 {
			b.syncMode.Store(false)
		}
	}
}

var errNotQueued = errors.New("bridge: not queued on the remote")

// ackLocal acknowledges m to the local broker: PUBACK, or PUBREC for QoS 2
// once x, the exchange on the remote (nil when m did not go there as QoS
// 2), has its PUBREC; the local broker's PUBREL then releases x (qos2.go).
func (b *Bridge) ackLocal(m *client.Message, x *client.Exchange) {
	if m.QoS == 2 {
		b.out2.hold(m.PacketID, x)
	}
	m.Ack()
}

// sendRemote queues it's message on rc with the local packet identifier,
// so that the local broker's resend after a restart is the same message
// to the remote too: QoS 1 until PUBACK, QoS 2 as an exchange held at
// PUBREC (x.Received returns at PUBREC). dup says it may have been sent
// before. it.m's payload is never changed: the client keeps it, uncopied.
func (b *Bridge) sendRemote(rc *client.Client, it *outItem, dup bool) (pend *client.Pending, x *client.Exchange, err error) {
	qos, opts := b.publishOptions(rc, it.m)
	opts.QoS = qos
	opts.PacketID, opts.Dup = it.m.PacketID, dup
	if b.guard != nil && !b.tryPrivate.Load() {
		b.guard.sent(it.rt, it.m.Payload)
	}
	for {
		if qos == 2 {
			x, err = rc.PublishHeld(it.rt, it.m.Payload, opts)
		} else {
			pend, err = rc.PublishPending(it.rt, it.m.Payload, opts)
		}
		if !errors.Is(err, client.ErrPacketIDInUse) || opts.PacketID == 0 {
			return pend, x, err
		}
		// Taken by a message of the bridge's own (a notification): an
		// identifier of the client's choice, without resume after a crash.
		b.log.Debug("local packet identifier in use on the remote; using another", "packet_id", opts.PacketID)
		opts.PacketID = 0
	}
}

// publishNow publishes one message and waits for the remote's
// acknowledgement (PUBREC for QoS 2, it.x then holds the exchange),
// waiting first for a remote client when there is none.
func (b *Bridge) publishNow(it *outItem) error {
	for {
		rc, changed := b.currentRemote()
		if rc == nil {
			select {
			case <-changed:
				continue
			case <-b.ctx.Done():
				return b.ctx.Err()
			}
		}
		// Sent before when it was queued on a client that ended.
		pend, x, err := b.sendRemote(rc, it, it.m.Dup || it.queued())
		if err == nil {
			it.pend, it.x = pend, x
			err = waitAck(b.ctx, pend, x)
		}
		if err == nil || refused(err) || b.ctx.Err() != nil {
			return err
		}
		// The remote client ended (once, lazy idle): wait for the next.
		select {
		case <-changed:
		case <-b.ctx.Done():
			return b.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// inItem is a QoS 1 or 2 message of the remote on its way to the local
// broker, in the order of arrival.
type inItem struct {
	m    *client.Message
	lt   string
	pend *client.Pending  // QoS 1: the publish on the local broker; with x nil too, acknowledge at once (no rule, echo, refused)
	x    *client.Exchange // QoS 2: the exchange on the local broker (waited for until PUBREC), released when the remote releases m
}

// fromRemote publishes a message of the remote on the local broker. A QoS
// 1 or 2 message is queued on the local client at once and handed to
// inLoop, which acknowledges it to the remote, in order, only once the
// local broker acknowledged it, which it does once the message is durable.
func (b *Bridge) fromRemote(m *client.Message) {
	it := inItem{m: m}
	r, ok := b.inRule(m.Topic)
	switch {
	case !ok:
	case b.guard != nil && !b.tryPrivate.Load() && b.guard.echo(m.Topic, m.Payload):
		b.looped.Add(1)
	default:
		b.touch()
		it.lt = r.LocalPrefix + strings.TrimPrefix(m.Topic, r.RemotePrefix)
		opts := client.PublishOptions{QoS: m.QoS, Retain: m.Retain, Properties: forwardProps(&m.Properties, packet.V5)}
		if m.QoS == 0 {
			if err := b.local.Publish(b.ctx, it.lt, m.Payload, opts); err == nil {
				b.received.Add(1)
			} else if b.ctx.Err() == nil {
				b.dropped.Add(1)
			}
			return
		}
		// With the remote's packet identifier: a PUBLISH the remote sends
		// again (DUP) after a restart of this broker is one the local
		// broker has seen (qos2.go).
		opts.PacketID, opts.Dup = m.PacketID, m.Dup
		for {
			var err error
			if m.QoS == 2 {
				it.x, err = b.local.PublishHeld(it.lt, m.Payload, opts)
			} else {
				it.pend, err = b.local.PublishPending(it.lt, m.Payload, opts) // m's payload is never changed
			}
			if errors.Is(err, client.ErrPacketIDInUse) && opts.PacketID != 0 {
				opts.PacketID, opts.Dup = 0, false // rare: an identifier of the client's choice
				continue
			}
			if err != nil {
				it.pend, it.x = nil, nil
				b.dropped.Add(1)
				b.log.Warn("the local broker cannot take a message from the remote; dropped", "topic", it.lt, "error", err)
			}
			break
		}
	}
	if m.QoS == 0 {
		return
	}
	select {
	case b.inq <- it:
	case <-b.ctx.Done():
	}
}

// inLoop acknowledges the remote's messages in order, each once the local
// broker acknowledged it. When the bridge stops first it returns without
// acknowledging: the remote, which keeps the session, sends them again.
func (b *Bridge) inLoop() {
	defer close(b.inDone)
	for {
		var it inItem
		select {
		case it = <-b.inq:
		case <-b.ctx.Done():
			return
		}
		if it.pend != nil || it.x != nil {
			if err := waitAck(b.ctx, it.pend, it.x); err != nil {
				if b.ctx.Err() != nil {
					return
				}
				b.dropped.Add(1)
				b.log.Warn("the local broker refused a message from the remote; dropped", "topic", it.lt, "error", err)
				it.x = nil
			} else {
				b.received.Add(1)
			}
		}
		if it.m.QoS == 2 {
			b.in2.hold(it.m.PacketID, it.x) // before PUBREC: the remote's PUBREL finds it
		}
		it.m.Ack()
	}
}

// match reports whether topic name t matches filter f.
func match(f, t string) bool {
	if strings.HasPrefix(t, "$") && (strings.HasPrefix(f, "#") || strings.HasPrefix(f, "+")) {
		return false // [MQTT-4.7.2-1]
	}
	for {
		fl, frest, fmore := strings.Cut(f, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(t, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || (fmore && frest == "#")
		}
		f, t = frest, trest
	}
}
