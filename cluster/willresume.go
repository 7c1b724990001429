package cluster

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A client of a dead node that reconnects, to any node, before its will
// delay has passed must not have its will published [MQTT-3.1.3-9]. The
// will of a dead node's client is claimed by one survivor (claimWill),
// which then waits for the delay. A node that takes such a client's
// session (Claim):
//   - deletes the will if no survivor has claimed it yet and its node is
//     not reachable on NATS (a node alive handles its connection's will
//     itself, as on a takeover): a later claim then fails, nothing is
//     published;
//   - tells every node on the subject PREFIX.willresumed ("KEY\nREV\nID":
//     wills bucket key, revision of the will it read or 0, client
//     identifier) that the client is back: a node holding its claimed
//     will cancels it.
//
// The two race: the resume can be told while a survivor is between
// reading the will and deleting it. The survivor registers its pending
// will before the delete, and each node remembers, for resumeMemory, the
// wills (key and revision) that resumes have been told about, which the
// survivor looks up after its delete and when the delay ends. The same
// memory cancels a will claimed after the resume whose node could not be
// told gone when the client reconnected (NATS had no answer yet).
//
// A will with no delay is not cancelled: it was due when the connection
// on the dead node ended, and its claimer publishes it at once. The delay
// is counted, as by the claimer, from when the survivors find the node
// dead (DeadAfter without a heartbeat), not from the death itself.

const (
	// resumeMemory is how long a told resume is remembered: longer than a
	// claim takes between reading a will and deleting it.
	resumeMemory = time.Minute
	// resumeMemoryMax bounds the resumes remembered (a few MB): more
	// within resumeMemory, in a mass reconnection after a node died, and
	// some may be forgotten, leaving only the delete of the
	// unclaimed will (resumeWill).
	resumeMemoryMax = 1 << 16
)

// willResumes holds the delayed wills this node claimed and the resumes it
// was told about.
type willResumes struct {
	mu      sync.Mutex
	pending map[string]*pendingWill // wills bucket key → claimed will waiting for its delay
	resumed map[string]toldResume   // wills bucket key → the will a resume was told about
}

type pendingWill struct {
	rev       uint64
	timer     *time.Timer
	cancelled bool
}

type toldResume struct {
	rev uint64
	at  time.Time
}

// register records the delayed will at key (revision rev) as claimed by
// this node, before the claim's delete.
func (r *willResumes) register(key string, rev uint64) *pendingWill {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[string]*pendingWill)
	}
	p := &pendingWill{rev: rev}
	r.pending[key] = p
	return p
}

// forget removes p (a claim that failed, or a will published).
func (r *willResumes) forget(key string, p *pendingWill) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[key] == p {
		delete(r.pending, key)
	}
}

// arm starts p's timer unless a resume cancelled it already; it reports
// whether it did.
func (r *willResumes) arm(key string, p *pendingWill, delay time.Duration, publish func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.cancelled || r.toldLocked(key, p.rev) {
		if r.pending[key] == p {
			delete(r.pending, key)
		}
		return false
	}
	p.timer = time.AfterFunc(delay, func() {
		if r.due(key, p) {
			publish()
		}
	})
	return true
}

// due reports whether p is to be published now that its delay has ended.
func (r *willResumes) due(key string, p *pendingWill) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[key] == p {
		delete(r.pending, key)
	}
	return !p.cancelled && !r.toldLocked(key, p.rev)
}

func (r *willResumes) toldLocked(key string, rev uint64) bool {
	t, ok := r.resumed[key]
	return ok && t.rev == rev && time.Since(t.at) < resumeMemory
}

// resume cancels the delayed will pending at key, if any, and remembers
// the will at revision rev (0: none was seen) as cancelled. It reports
// whether a pending will was cancelled.
func (r *willResumes) resume(key string, rev uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cancelled := false
	if p := r.pending[key]; p != nil {
		p.cancelled = true
		if p.timer != nil {
			p.timer.Stop()
		}
		delete(r.pending, key)
		cancelled = true
	}
	if rev == 0 {
		return cancelled
	}
	if r.resumed == nil {
		r.resumed = make(map[string]toldResume)
	}
	now := time.Now()
	if len(r.resumed) >= resumeMemoryMax {
		for k, t := range r.resumed {
			if now.Sub(t.at) >= resumeMemory {
				delete(r.resumed, k)
			}
		}
		for k := range r.resumed { // still full: forget a quarter, any
			if len(r.resumed) < resumeMemoryMax*3/4 {
				break
			}
			delete(r.resumed, k)
		}
	}
	r.resumed[key] = toldResume{rev: rev, at: now}
	return cancelled
}

// stopAll stops every pending will's timer (the node closes).
func (r *willResumes) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.pending {
		p.cancelled = true
		if p.timer != nil {
			p.timer.Stop()
		}
		delete(r.pending, k)
	}
}

func (c *Cluster) willResumedSubject() string { return c.prefix + "willresumed" }

// subscribeWillResumes subscribes to the resumes told by every node.
func (c *Cluster) subscribeWillResumes() error {
	_, err := c.nc.Subscribe(c.willResumedSubject(), func(m *nats.Msg) {
		key, rest, ok1 := strings.Cut(string(m.Data), "\n")
		v, clientID, ok2 := strings.Cut(rest, "\n")
		rev, err := strconv.ParseUint(v, 10, 64)
		if !ok1 || !ok2 || err != nil || key == "" {
			c.log.Warn("cluster: unreadable will resume notice skipped", "data", string(m.Data))
			return
		}
		if c.wr.resume(key, rev) {
			c.log.Info("cluster: the delayed will of a dead node's client is cancelled: the client reconnected within its will delay", "client", clientID)
		}
	})
	return err
}

// resumeWill is called once this node has claimed clientID's session: the
// will a connection of clientID left on a dead node is not published
// [MQTT-3.1.3-9].
func (c *Cluster) resumeWill(clientID string) {
	key := ownerKey(clientID)
	ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
	defer cancel()
	var rev uint64
	gctx, gcancel := context.WithTimeout(ctx, claimAttempt)
	e, err := c.wills.Get(gctx, key)
	gcancel()
	if err == nil {
		w, derr := decodeWill(e.Value(), e.Revision())
		// A will this node wrote is its own broker's; one without delay
		// was due when the connection ended.
		if derr == nil && w.origin != c.origin && w.delay > 0 {
			rev = w.rev // told: a claim of it, racing, is cancelled
			// Its node's broker handles its connection's will, as a single
			// node does on a takeover, while the node is on NATS. Its
			// heartbeat is not asked (alive): it stays in the bucket for
			// DeadAfter after a death, when most clients reconnect.
			if !c.reachable(ctx, w.origin) {
				if derr := c.wills.Delete(ctx, key, jetstream.LastRevision(w.rev)); derr == nil {
					c.log.Info("cluster: the will of a dead node's client is cancelled: the client reconnected within its will delay", "client", clientID, "dead_node", w.origin)
				}
			}
		}
	}
	// Whether or not the delete succeeded (a survivor may have claimed the
	// will first, or claim one this node could not read): tell them all.
	if err := c.nc.Publish(c.willResumedSubject(), []byte(key+"\n"+strconv.FormatUint(rev, 10)+"\n"+clientID)); err != nil {
		c.log.Warn("cluster: cannot tell the other nodes that a client reconnected: the delayed will of its connection on a dead node may still be published", "client", clientID, "error", err)
	}
}
