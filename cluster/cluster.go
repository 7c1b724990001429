package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// Headers of a routed message.
const (
	hdrOrigin = "Gannet-Origin" // the publishing node's instance
	hdrSeq    = "Gannet-Seq"    // its count of routed messages
)

// StoreTimeout bounds how long a QoS 1/2 or retained publish waits for
// JetStream to store it; past it the publisher is refused.
const StoreTimeout = 3 * time.Second

// ErrNotReady is returned by Route for a message that needs JetStream
// while it has no quorum (or has not formed yet).
var ErrNotReady = errors.New("cluster: JetStream is not available (no quorum of nodes?)")

// Cluster is one node's membership of a cluster: it implements
// broker.Cluster. Create it with New and give it to broker.Options.Cluster.
type Cluster struct {
	opt    Options
	log    *slog.Logger
	ns     *server.Server // the embedded server; nil with Options.NATSURL
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string // "gannet.NAME."
	origin string // this node's instance: node name and a fresh nuid

	pubMu sync.Mutex // orders the live frames' numbers with their sending
	seq   uint64     // guarded by pubMu: live frames sent
	fwd   forwarder  // the live frames being filled (forwarder.go)

	// storing maps each message being stored by Store to the broker's
	// callback (store.go).
	storeMu     sync.Mutex
	storing     map[*nats.Msg]func(uint64, error)
	storeClosed bool // guarded by storeMu: Close refused what was pending
	// onceRefused holds the QoS 2 message identifiers whose store this
	// node refused to the publisher, with when (storeonce.go).
	onceRefused map[string]time.Time // guarded by storeMu

	in     broker.Inbound
	owners jetstream.KeyValue // client identifier → owning node instance
	wills  jetstream.KeyValue // client identifier → will (wills.go)
	// sessions holds the persistent sessions (sessions.go); done the
	// tombstones of completed QoS 2 deliveries.
	sessions, done jetstream.KeyValue
	// nodes holds the heartbeats (wills.go).
	nodes jetstream.KeyValue
	// shared2 records the messages held for $share members (shared.go).
	shared2   jetstream.KeyValue
	sharedOps chan sharedOp
	// applied is this node's checkpoint: every message of the messages
	// stream up to it has been applied to its sessions (sessions.go), as
	// the audit's ledger says (audit.go).
	applied atomic.Uint64
	// audited holds this node's non-shared filters for the audit
	// (audit.go); streamHigh is the last stream sequence this node knows.
	audited    *topic.Trie[*interestFilter]
	streamHigh atomic.Uint64
	checking   atomic.Bool          // a check is in the dispatch queue
	due        chan []uint64        // gaps for the fill goroutine
	filled     atomic.Uint64        // gaps delivered from the stream
	gapsFound  atomic.Uint64        // sequences audited and not arrived live (yet)
	cpMu       sync.Mutex           // one checkpoint write at a time (adopt.go)
	localMu    sync.Mutex           // guards local
	local      map[uint64]time.Time // stored here, not forwarded yet
	auditing   bool                 // the audit runs (setup goroutine only)
	// dropLive, set by tests only, drops live messages on one subject.
	dropLive atomic.Pointer[dropHook]
	// shared is the broker's store when it keeps its sessions here.
	shared *sharedStore
	// adopted counts the sessions adopted from dead nodes; lastAdoption
	// is how long the last adoption took, replay included (ns).
	adopted      atomic.Uint64
	lastAdoption atomic.Int64
	msgs         chan *nats.Msg // every live message, in the order NATS delivers them
	ready        atomic.Bool    // the JetStream streams exist and are consumed
	// retainedSeq is the stream sequence of the last retained message applied.
	retainedSeq atomic.Uint64
	readyCh     chan struct{}
	// willsStarted is set once setupWills succeeded (setup goroutine only).
	willsStarted bool
	// ownersWatched is set once watchOwners succeeded (setup goroutine only).
	ownersWatched bool

	mu       sync.Mutex // guards the fields below
	started  bool
	closed   bool
	interest map[string]*filterSub
	queues   map[*nats.Subscription]string // queue subscription → $share filter
	owned    map[string]uint64             // client identifier → revision of our claim
	willRevs map[string]uint64             // client identifier → revision of the will we kept
	// prevOwner is the node instance that owned a client identifier
	// before this node's last Claim, until the session is loaded.
	prevOwner map[string]string
	// prevCheckpoint is where the replay to a session taken from
	// prevOwner starts (takeover.go).
	prevCheckpoint map[string]uint64
	replays        map[int]*replayHold // running replays: where each started (adopt.go)
	replayN        int
	// droppedAt is, for a session this node dropped because another node
	// claimed it without asking (ownerwatch.go), where the replay to it
	// must start, for the takeover request that may follow.
	droppedAt map[string]uint64
	// adopting lists the dead node instances whose sessions this node
	// has looked for (adopt.go).
	adopting map[string]bool
	// wr holds the delayed wills this node claimed (willresume.go; its own lock).
	wr willResumes

	ops opsState // heartbeats heard, draining (ops.go)
	// loadHook, set by tests, may fail the reading of a session.
	loadHook atomic.Pointer[func(clientID string) error]
	// beatHook, set by tests, may keep this node's heartbeats from being
	// written (false), as a nodes bucket without a leader would.
	beatHook atomic.Pointer[func() bool]

	stop chan struct{}
	wg   sync.WaitGroup
	// base is cancelled by Close: the background work (adoption, replay,
	// checkpoints) ends with it.
	base       context.Context
	cancelBase context.CancelFunc

	// replaysOf holds, per session, the replays running to it (c.mu;
	// replaywindow.go).
	replaysOf map[string]map[*replayed]struct{}
}

// filterSub is this node's interest in one MQTT filter.
type filterSub struct {
	n    int                  // local subscriptions using the filter
	subs []*nats.Subscription // one, or two for "x/#" (x and x.>)
	af   *interestFilter      // in the audit's trie; nil for $share
}

// dropHook makes the dispatch goroutine drop the next n live messages on
// subject, as a lossy route would (tests).
type dropHook struct {
	subject string
	n       atomic.Int64
}

// New starts the embedded NATS server (unless Options.NATSURL names an
// existing one) and connects to it. The broker calls Start.
func New(o Options) (*Cluster, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", o.Node)
	c := &Cluster{
		opt:            o,
		log:            log,
		prefix:         "gannet." + o.Name + ".",
		origin:         o.Node + "-" + nuid.Next(),
		msgs:           make(chan *nats.Msg, cmp.Or(o.dispatchQueue, 1<<16)),
		sharedOps:      make(chan sharedOp, 1<<16),
		interest:       make(map[string]*filterSub),
		queues:         make(map[*nats.Subscription]string),
		owned:          make(map[string]uint64),
		willRevs:       make(map[string]uint64),
		storing:        make(map[*nats.Msg]func(uint64, error)),
		prevOwner:      make(map[string]string),
		prevCheckpoint: make(map[string]uint64),
		adopting:       make(map[string]bool),
		replays:        make(map[int]*replayHold),
		droppedAt:      make(map[string]uint64),
		audited:        topic.NewTrie[*interestFilter](topic.TrieOptions{}),
		due:            make(chan []uint64, 1),
		local:          make(map[uint64]time.Time),
		stop:           make(chan struct{}),
		readyCh:        make(chan struct{}),
	}
	c.base, c.cancelBase = context.WithCancel(context.Background())
	c.fwd.init(c.origin)
	copts := []nats.Option{
		nats.Name("gannet " + o.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("cluster: lost the NATS connection, reconnecting", "error", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			log.Warn("cluster: NATS error: live messages from other nodes may be lost (QoS 1/2 ones are read from the messages stream instead, after a delay; QoS 0 ones are lost)", "error", err)
		}),
	}
	url := o.NATSURL
	if url == "" {
		if err := setRaftTiming(cmp.Or(o.ElectionTimeout, DefaultElectionTimeout)); err != nil { // election.go
			return nil, err
		}
		ns, err := startServer(o, log)
		if err != nil {
			return nil, err
		}
		c.ns = ns
		copts = append(copts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(url, copts...)
	if err != nil {
		if c.ns != nil {
			c.ns.Shutdown()
		}
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	c.nc = nc
	c.fwd.maxPayload = nc.MaxPayload()
	c.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncAckHandler(c.asyncStored),
		jetstream.WithPublishAsyncErrHandler(c.asyncFailed),
		jetstream.WithPublishAsyncTimeout(StoreTimeout),
		jetstream.WithPublishAsyncMaxPending(maxStoring))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: JetStream: %w", err)
	}
	return c, nil
}

// startServer starts the embedded nats-server with JetStream and routes.
func startServer(o Options, log *slog.Logger) (*server.Server, error) {
	host, port, err := hostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen %q: %w", o.Listen, err)
	}
	chost, cport, err := hostPort(o.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("cluster: client listen %q: %w", o.ClientListen, err)
	}
	sopts := &server.Options{
		ServerName: o.Node,
		// Routing waits on the client accept loop: keep a client
		// listener, on loopback.
		Host:       chost,
		Port:       cport,
		Cluster:    server.ClusterOpts{Name: o.Name, Host: host, Port: port, Advertise: o.advertise},
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "jetstream"),
		SyncAlways: o.SyncAlways,
		MaxPayload: 8 << 20,
		NoSigs:     true,
	}
	if len(o.Routes) > 0 {
		sopts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("cluster: NATS server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("cluster: the NATS server did not start within 10s (is %s free?)", o.Listen)
	}
	return ns, nil
}

// hostPort splits an address; port 0 asks NATS for a free one (-1).
func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return h, n, nil
}

// RouteAddr is the address the embedded server's route listener is bound
// to ("" without an embedded server).
func (c *Cluster) RouteAddr() string {
	if c.ns == nil {
		return ""
	}
	a := c.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return a.String()
}

// Ready is closed once JetStream has formed and the cluster-wide state is
// being read.
func (c *Cluster) Ready() <-chan struct{} { return c.readyCh }

// Start implements broker.Cluster: it subscribes to what the broker's
// subscriptions need, and sets up JetStream in the background (it needs a
// quorum of nodes; live QoS 0 routing works before).
func (c *Cluster) Start(in broker.Inbound) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("cluster: started twice")
	}
	c.in = in
	c.started = true
	var err error
	for f, fs := range c.interest {
		err = errors.Join(err, c.subscribeLocked(f, fs))
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := c.nc.Subscribe(c.prefix+"ctl."+c.origin, c.control); err != nil {
		return fmt.Errorf("cluster: control subject: %w", err)
	}
	if err := c.subscribeWillResumes(); err != nil { // willresume.go
		return fmt.Errorf("cluster: will resume subject: %w", err)
	}
	c.wg.Add(3)
	go c.dispatch()
	go c.flusher() // forwarder.go
	go c.setup()
	return nil
}

// setup creates the streams and starts the retained consumer, retrying
// until JetStream answers.
func (c *Cluster) setup() {
	defer c.wg.Done()
	deadline := time.Now().Add(c.opt.StartTimeout)
	warned := false
	for {
		err := c.setupOnce()
		if err == nil {
			c.ready.Store(true)
			close(c.readyCh)
			c.wg.Add(3)
			go c.checkpointLoop()
			go c.sharedLoop()
			go c.leaderLoop() // leaders.go
			c.log.Info("cluster: JetStream ready", "replicas", c.opt.Replicas)
			return
		}
		if !warned && time.Now().After(deadline) {
			c.log.Warn("cluster: JetStream not ready yet: QoS 1/2 and retained publishes are refused until a quorum of nodes is up", "error", err)
			warned = true
		}
		select {
		case <-c.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) retainedStream() string { return "GANNET_" + c.opt.Name + "_RETAINED" }

func (c *Cluster) messageStream() string { return "GANNET_" + c.opt.Name + "_MESSAGES" }

// MessageRetention is how long the messages stream keeps QoS 1/2
// messages.
const MessageRetention = time.Hour

func (c *Cluster) setupOnce() error {
	// JetStream answers once it has a meta leader: ask cheaply first.
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	_, err := c.js.AccountInfo(actx)
	acancel()
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	// An attempt that hangs (a stream whose leader is being elected) is
	// cut short and made again: every step is idempotent.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Each replicated stream elects its own leader, which takes seconds:
	// create them all at once.
	var (
		wg                 sync.WaitGroup
		st, mst            jetstream.Stream
		owners, wills, hbs jetstream.KeyValue
		sessions, done     jetstream.KeyValue
		sharedKV           jetstream.KeyValue
		errs               [8]error
	)
	kv := func(i int, dst *jetstream.KeyValue, cfg jetstream.KeyValueConfig) {
		defer wg.Done()
		cfg.Replicas = c.opt.Replicas
		*dst, errs[i] = c.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	wg.Add(8)
	go func() {
		defer wg.Done()
		st, errs[0] = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              c.retainedStream(),
			Description:       "Gannet: the retained message of each MQTT topic",
			Subjects:          []string{c.prefix + "r.>"},
			MaxMsgsPerSubject: 1,
			Replicas:          c.opt.Replicas,
			AllowDirect:       true,
		})
	}()
	go func() {
		defer wg.Done()
		mst, errs[1] = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        c.messageStream(),
			Description: "Gannet: QoS 1 and 2 messages, stored before the publisher is acknowledged",
			Subjects:    []string{c.prefix + "q.>"},
			Replicas:    c.opt.Replicas,
			MaxAge:      MessageRetention,
			AllowDirect: true,
		})
	}()
	go kv(2, &owners, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_owners",
		Description: "Gannet: the node that owns each client identifier's session",
	})
	go kv(3, &wills, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_wills",
		Description: "Gannet: the will of each connected client, published by a survivor if its node dies",
	})
	go kv(4, &hbs, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_nodes",
		Description: "Gannet: node heartbeats",
		TTL:         DeadAfter,
	})
	go kv(5, &sessions, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_sessions",
		Description: "Gannet: persistent sessions, their queues and node checkpoints",
	})
	go kv(6, &done, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_done",
		Description: "Gannet: completed QoS 2 deliveries, never replayed",
		TTL:         MessageRetention,
	})
	go kv(7, &sharedKV, jetstream.KeyValueConfig{
		Bucket:      "gannet_" + c.opt.Name + "_shared",
		Description: "Gannet: the messages each node holds for shared-subscription members",
		TTL:         MessageRetention,
	})
	wg.Wait()
	for i, what := range []string{"retained stream", "messages stream", "owners bucket", "wills bucket", "nodes bucket", "sessions bucket", "done bucket", "shared bucket"} {
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", what, errs[i])
		}
	}
	c.owners, c.wills = owners, wills
	c.sessions, c.done, c.shared2, c.nodes = sessions, done, sharedKV, hbs
	if c.applied.Load() == 0 {
		// No session was here before: the checkpoint starts at the
		// stream's end, written before this node takes any session.
		c.applied.Store(mst.CachedInfo().State.LastSeq)
		c.streamHighAt(c.applied.Load())
	}
	if _, err := sessions.Put(ctx, checkpointKey(c.origin), []byte(strconv.FormatUint(c.applied.Load(), 10))); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if !c.willsStarted {
		if err := c.watchWills(hbs); err != nil {
			return err
		}
		c.willsStarted = true
	}
	if !c.ownersWatched {
		if err := c.watchOwners(owners); err != nil {
			return err
		}
		c.ownersWatched = true
	}
	if !c.auditing {
		if err := c.startAudit(ctx, mst, c.applied.Load()); err != nil {
			return fmt.Errorf("audit consumer: %w", err)
		}
		c.auditing = true
	}
	c.log.Debug("cluster: streams and buckets exist")
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("retained consumer: %w", err)
	}
	cc, err := cons.Consume(c.applyRetained)
	if err != nil {
		return fmt.Errorf("retained consumer: %w", err)
	}
	go func() { <-c.stop; cc.Stop() }()
	return nil
}

// applyRetained makes a cluster-wide retained message this node's.
func (c *Cluster) applyRetained(m jetstream.Msg) {
	p, err := decode(m.Data())
	if err != nil {
		c.log.Warn("cluster: unreadable retained message skipped", "subject", m.Subject(), "error", err)
	} else {
		p.Retain = true
		c.in.Retain(p)
	}
	if md, err := m.Metadata(); err == nil {
		c.retainedSeq.Store(md.Sequence.Stream)
	}
}

// control answers requests from other nodes: "takeover CLIENTID".
func (c *Cluster) control(m *nats.Msg) {
	if id, ok := strings.CutPrefix(string(m.Data), "takeover "); ok {
		m.Respond(c.takeOver(id)) // takeover.go
		return
	}
	m.Respond(nil)
}

// ownerKey is the owners bucket's key of a client identifier: one token.
func ownerKey(id string) string { return "c" + string(appendLevel(nil, id)) }

// claimAttempt bounds one read or write of a Claim, within StoreTimeout.
const claimAttempt = time.Second

// Claim implements broker.SessionOwners: it makes this node the owner of
// clientID by compare-and-set on the owners bucket (whose writes go
// through the stream's leader, so two nodes cannot both win), then asks
// the previous owner, if another node, to take its connection over.
func (c *Cluster) Claim(clientID string) error {
	prev, err := c.claimOwner(clientID)
	if err != nil {
		return err
	}
	if prev != "" && prev != c.origin {
		c.takeFrom(clientID, prev) // takeover.go
	}
	if prev != "" {
		c.resumeWill(clientID) // willresume.go [MQTT-3.1.3-9]
	}
	return nil
}

// claimOwner makes this node the owner of clientID in the owners bucket
// and returns the previous owner ("" if none).
func (c *Cluster) claimOwner(clientID string) (string, error) {
	if !c.ready.Load() {
		return "", ErrNotReady
	}
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	key := ownerKey(clientID)
	var prev string
	var rev uint64
	held := "" // the previous owner whose checkpoint this claim holds
	for attempt := 0; ; attempt++ {
		// Each read and write has claimAttempt of the budget: a request
		// or its answer lost on the way (a route that closed under it)
		// leaves time for another try.
		actx, acancel := context.WithTimeout(ctx, claimAttempt)
		e, err := c.owners.Get(actx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			prev = ""
			rev, err = c.owners.Create(actx, key, []byte(c.origin))
		case err == nil:
			prev = string(e.Value())
			if prev != "" && prev != c.origin && prev != held {
				// Held in this node's checkpoint before the claim
				// (takeover.go), once per previous owner: a read of
				// its checkpoint may wait a second for a consumer
				// (none without a meta leader), and the write after it
				// gets its own attempt's time, not what the hold left.
				if herr := c.holdBeforeClaim(ctx, clientID, prev); herr != nil {
					acancel()
					return "", fmt.Errorf("cluster: claim session %q: %w", clientID, herr)
				}
				held = prev
				acancel()
				actx, acancel = context.WithTimeout(ctx, claimAttempt)
			}
			rev, err = c.owners.Update(actx, key, []byte(c.origin), e.Revision())
		}
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			c.mu.Lock()
			if c.owned[clientID] == 0 { // not this node's: no hold for it
				delete(c.prevOwner, clientID)
				delete(c.prevCheckpoint, clientID)
			}
			c.mu.Unlock()
			return "", fmt.Errorf("cluster: claim session %q: %w", clientID, err)
		}
		c.log.Debug("cluster: a claim on a client identifier failed; trying again", "client", clientID, "attempt", attempt, "error", err)
		// Someone wrote first, or the replica that answered the read (the
		// local one, first) has not applied the last write yet: read
		// again, for as long as the claim's time lasts. A replica lags
		// for milliseconds, or hundreds of them on a loaded machine: a
		// bound on the number of tries would give up sooner.
		time.Sleep(time.Duration(min(attempt+1, 20)) * time.Millisecond)
	}
	c.mu.Lock()
	c.owned[clientID] = rev
	delete(c.droppedAt, clientID)
	if prev == "" {
		delete(c.prevOwner, clientID)
		delete(c.prevCheckpoint, clientID)
	}
	// Else the hold made before the claim stays (a claim of its own
	// keeps what an earlier one inherited and has not loaded yet).
	c.mu.Unlock()
	return prev, nil
}

// Owns implements broker.SessionOwners: it rewrites this node's claim at
// the revision it made, which fails if another node claimed since (a
// read could come from a lagging replica; a write cannot).
func (c *Cluster) Owns(clientID string) bool {
	c.mu.Lock()
	rev, ok := c.owned[clientID]
	c.mu.Unlock()
	if !ok || !c.ready.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nrev, err := c.owners.Update(ctx, ownerKey(clientID), []byte(c.origin), rev)
	if err != nil {
		// Someone wrote since, or the write failed: only another owner's
		// name says this node lost the identifier.
		e, gerr := c.owners.Get(ctx, ownerKey(clientID))
		if gerr != nil {
			c.log.Warn("cluster: cannot check who owns a session; keeping the connection", "client", clientID, "error", err)
			return true
		}
		if e.Revision() <= rev {
			// A replica behind this node's own claim answered: nothing
			// says another node claimed since.
			return true
		}
		if string(e.Value()) != c.origin {
			return false
		}
		nrev = e.Revision()
	}
	c.mu.Lock()
	if c.owned[clientID] == rev {
		c.owned[clientID] = nrev
	}
	c.mu.Unlock()
	return true
}

// SyncRetained implements broker.RetainedSyncer: it asks the retained
// stream for its last sequence and waits (at most 2 s) until this node has
// applied it.
func (c *Cluster) SyncRetained() {
	if !c.ready.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, c.retainedStream())
	if err != nil {
		c.log.Warn("cluster: cannot read the retained stream: a new subscription may miss a retained message", "error", err)
		return
	}
	last := st.CachedInfo().State.LastSeq
	for c.retainedSeq.Load() < last {
		select {
		case <-ctx.Done():
			c.log.Warn("cluster: retained messages lag: a new subscription may miss one", "applied", c.retainedSeq.Load(), "last", last)
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// decode reads a routed message: a 5.0 PUBLISH packet.
func decode(b []byte) (*packet.Publish, error) {
	d := packet.Decoder{Version: packet.V5}
	p, _, err := d.Decode(b)
	if err != nil {
		return nil, err
	}
	pub, ok := p.(*packet.Publish)
	if !ok || p == nil {
		return nil, errors.New("not a PUBLISH")
	}
	return pub, nil
}

// Route implements broker.Cluster. A retained message is stored in the
// retained stream, a QoS 1/2 message in the messages stream, first
// (acknowledged by a majority of its replicas); every message then goes to
// the nodes with matching subscriptions over core NATS.
func (c *Cluster) Route(p *packet.Publish) error {
	_, err := c.RouteSeq(p)
	return err
}

// RouteSeq implements broker.SequencedRouter: Route that returns the
// sequence a QoS 1/2 message was stored with in the messages stream.
func (c *Cluster) RouteSeq(p *packet.Publish) (uint64, error) {
	if !p.Retain && p.QoS == 0 {
		return 0, c.forward(p, nil, 0) // encoded into its frame
	}
	data, err := encode(p)
	if err != nil {
		return 0, err
	}
	var seq uint64
	if p.Retain || p.QoS > 0 {
		// Stored, with a majority of the replicas, before the publisher
		// is acknowledged; refused without a quorum.
		if !c.ready.Load() {
			return 0, ErrNotReady
		}
		ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
		ack, err := c.js.PublishMsg(ctx, c.storeMsg(p, data))
		cancel()
		if err != nil {
			return 0, fmt.Errorf("cluster: store %q in JetStream: %w", p.Topic, err)
		}
		if !p.Retain {
			seq = ack.Sequence
		}
	}
	return seq, c.forward(p, data, seq)
}

// encode makes the routed and stored form of p: a 5.0 PUBLISH packet.
func encode(p *packet.Publish) ([]byte, error) {
	data, err := appendRouted(nil, p)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode %q: %w", p.Topic, err)
	}
	return data, nil
}

// storeMsg is what p, encoded as data, is stored as: with the publishing
// node, so that its own audit skips it (audit.go).
func (c *Cluster) storeMsg(p *packet.Publish, data []byte) *nats.Msg {
	return &nats.Msg{Subject: c.storeSubject(p), Data: data, Header: nats.Header{hdrOrigin: []string{c.origin}}}
}

// storeSubject is the subject p is stored under: in the retained stream
// or in the messages stream.
func (c *Cluster) storeSubject(p *packet.Publish) string {
	if p.Retain {
		return c.prefix + "r." + TopicSubject(p.Topic)
	}
	return c.prefix + "q." + TopicSubject(p.Topic)
}

// Subscribe implements broker.Cluster: the first local subscription of a
// filter subscribes this node to it on NATS.
func (c *Cluster) Subscribe(filter string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.interest[filter]
	if fs == nil {
		fs = &filterSub{}
		c.interest[filter] = fs
	}
	fs.n++
	if fs.n == 1 {
		if _, _, shared := topic.ParseShare(filter); !shared {
			// Messages stored from now on are this filter's.
			fs.af = &interestFilter{filter: filter, since: c.streamHigh.Load()}
			c.audited.Add(topic.Subscription[*interestFilter]{Subscriber: fs.af, Filter: filter})
		}
	}
	if fs.n == 1 && c.started && !c.closed {
		if err := c.subscribeLocked(filter, fs); err != nil {
			c.log.Warn("cluster: cannot subscribe: messages from other nodes will not reach this filter", "filter", filter, "error", err)
		}
	}
}

// Unsubscribe implements broker.Cluster.
func (c *Cluster) Unsubscribe(filter string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.interest[filter]
	if fs == nil {
		return
	}
	fs.n--
	if fs.n > 0 {
		return
	}
	delete(c.interest, filter)
	if fs.af != nil {
		c.audited.Remove(fs.af, filter)
	}
	for _, s := range fs.subs {
		delete(c.queues, s)
		s.Unsubscribe()
	}
}

// subscribeLocked makes the NATS subscriptions of a filter. c.mu held.
func (c *Cluster) subscribeLocked(filter string, fs *filterSub) error {
	group, inner, shared := topic.ParseShare(filter)
	if !shared {
		inner = filter
	}
	subj, parent := FilterSubject(inner)
	subjects := []string{c.prefix + "m." + subj}
	if parent != "" {
		subjects = append(subjects, c.prefix+"m."+parent)
	}
	for _, s := range subjects {
		var sub *nats.Subscription
		var err error
		if shared {
			// One member cluster-wide: NATS gives each message to one
			// queue subscriber of the group [MQTT-4.8.2-3].
			sub, err = c.nc.ChanQueueSubscribe(s, string(appendLevel(nil, group)), c.msgs)
			if err == nil {
				c.queues[sub] = filter
			}
		} else {
			sub, err = c.nc.ChanSubscribe(s, c.msgs)
		}
		if err != nil {
			return err
		}
		fs.subs = append(fs.subs, sub)
	}
	return nil
}

// Subscriptions returns how many NATS subscriptions this node holds for
// its MQTT subscriptions.
func (c *Cluster) Subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, fs := range c.interest {
		n += len(fs.subs)
	}
	return n
}

// Received returns how many messages this node's NATS connection has
// received.
func (c *Cluster) Received() uint64 { return c.nc.Stats().InMsgs }

// Interest returns how many subscriptions, of any node, this node's NATS
// server knows for topic's subject.
func (c *Cluster) Interest(topicName string) int {
	if c.ns == nil {
		return 0
	}
	return c.ns.GlobalAccount().Interest(c.prefix + "m." + TopicSubject(topicName))
}

// dispatch hands live messages from other nodes to the broker, in the
// order NATS delivered them. A message that matches several of this node's
// filters arrives once per filter: the origin's sequence numbers, which
// only grow, let only the first through.
func (c *Cluster) dispatch() {
	defer c.wg.Done()
	last := make(map[string]*uint64)
	l := newLedger(0)
	dec := &packet.Decoder{Version: packet.V5, Reuse: true}
	var ib broker.InboundBatch = unbatched{c.in}
	if b, ok := c.in.(broker.InboundBatcher); ok {
		// What arrived together is written to each subscriber together.
		ib = b.NewBatch()
	}
	for {
		var m *nats.Msg
		select {
		case <-c.stop:
			return
		case m = <-c.msgs:
		}
	burst:
		for n := 0; ; n++ {
			c.dispatchOne(m, last, dec, l, ib)
			if n == 255 {
				break
			}
			select {
			case m = <-c.msgs:
			default:
				break burst
			}
		}
		ib.Flush()
	}
}

// unbatched is the InboundBatch of an Inbound that does not batch.
type unbatched struct{ broker.Inbound }

func (unbatched) Flush() {}

// dispatchOne hands one live message, or a record of the audit
// (audit.go), to the broker. Every message is handed over in the order it
// arrived (through the batch or not): once handed over, a message is in
// its sessions, only the writes to the connections wait for the batch's
// flush. A live frame (frame.go) is handed over message by message, dec
// decoding its QoS 0 ones in place.
func (c *Cluster) dispatchOne(m *nats.Msg, last map[string]*uint64, dec *packet.Decoder, l *ledger, ib broker.InboundBatch) {
	switch m.Sub {
	case nil:
		return
	case auditSub, checkSub, fillSub:
		c.dispatchAudit(m, l, ib)
		return
	}
	origin, fseq, rest, framed, err := frameHead(m.Data)
	if err != nil {
		c.log.Warn("cluster: unreadable message from another node skipped", "subject", m.Subject, "error", err)
		return
	}
	only := ""
	if !framed {
		only = m.Header.Get(hdrShareOnly) // for one shared group (shared.go)
	}
	share, filter := "", ""
	if m.Sub.Queue != "" {
		c.mu.Lock()
		filter = c.queues[m.Sub]
		c.mu.Unlock()
		if filter == "" {
			return // unsubscribed since
		}
		share, _, _ = topic.ParseShare(filter)
		if only != "" && only != share {
			return
		}
	} else if only != "" {
		return
	} else {
		if h := c.dropLive.Load(); h != nil && h.subject == m.Subject && h.n.Add(-1) >= 0 {
			return // lost on the way (tests)
		}
		if !framed {
			origin = []byte(m.Header.Get(hdrOrigin)) // a Gannet without frames
			fseq, _ = strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
		}
		if string(origin) == c.origin {
			return // delivered here already
		}
		// A frame that matches several of this node's filters arrives
		// once per filter: only the first goes through.
		if prev := last[string(origin)]; prev == nil {
			v := fseq
			last[string(origin)] = &v
		} else if fseq <= *prev {
			return
		} else {
			*prev = fseq
		}
	}
	if framed {
		c.dispatchFrame(m.Subject, rest, share, filter, dec, l, ib) // forwarder.go
		return
	}
	p, err := decode(m.Data)
	if err != nil {
		c.log.Warn("cluster: unreadable message from another node skipped", "subject", m.Subject, "error", err)
		return
	}
	seq, _ := strconv.ParseUint(m.Header.Get(hdrStreamSeq), 10, 64)
	c.deliverLive(p, seq, m.Subject, share, filter, l, ib)
}

// deliverLive hands one live message that arrived on subject to the
// broker, seq its sequence in the messages stream (0: none). Dispatch
// goroutine.
func (c *Cluster) deliverLive(p *packet.Publish, seq uint64, subject, share, filter string, l *ledger, ib broker.InboundBatch) {
	if seq == 0 {
		ib.Deliver(p, share, filter)
		return
	}
	if share != "" {
		ib.DeliverSeq(p, share, filter, seq)
		return
	}
	c.streamHighAt(seq)
	if !l.liveSeq(seq) {
		return // read from the stream already (audit.go)
	}
	tail := strings.TrimPrefix(subject, c.prefix+"m.")
	if l.hold(tail, p, seq) {
		l.deliveredSeq(seq) // arrived: never read from the stream
		return
	}
	ib.DeliverSeq(p, share, filter, seq)
	if g := l.deliveredSeq(seq); g != nil {
		c.release(l, g.tail, ib, false) // it was a gap: what waited behind it goes
	}
}

// Close implements broker.Cluster: it leaves the cluster and stops the
// embedded server.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.shared != nil {
		c.shared.w.flushAll(StoreTimeout) // the sessions' last writes
	}
	close(c.stop)
	c.cancelBase()
	c.wg.Wait()
	c.wr.stopAll() // a closed broker publishes no will
	if c.shared != nil {
		c.shared.w.stop()
	}
	c.leave() // ops.go
	if c.nc != nil {
		c.nc.Close()
	}
	c.failStoring()
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
	return nil
}

// natsLogger sends the embedded server's logs to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.log.Info("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.log.Warn("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.log.Error("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.log.Error("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  { l.log.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Tracef(f string, v ...any)  {}
