package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// hangingOwners is an owners bucket whose first write never gets an
// answer: the request, or its answer, was lost on the way (as when a
// route closes under it: seen in TestConnectWithoutMetaLeader, where the
// first claim after the cut waited out its whole time and a second,
// made at once after it, got its answer in milliseconds).
type hangingOwners struct {
	jetstream.KeyValue // nil: only Get and Create are used
	writes             atomic.Int32
}

func (h *hangingOwners) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

func (h *hangingOwners) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	if h.writes.Add(1) == 1 {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 7, nil
}

// A claim whose first write is never answered tries again within its
// time (StoreTimeout): one lost request must not refuse the CONNECT
// (0x88) while the owners bucket has a leader and a quorum.
func TestClaimRetriesALostWrite(t *testing.T) {
	c := &Cluster{
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		origin:    "n1-test",
		owners:    &hangingOwners{},
		owned:     make(map[string]uint64),
		prevOwner: make(map[string]string),
	}
	c.ready.Store(true)
	start := time.Now()
	if err := c.Claim("lost-write"); err != nil {
		t.Fatalf("claim refused %v after a lost write: %v", time.Since(start), err)
	}
	if rev := c.owned["lost-write"]; rev != 7 {
		t.Errorf("claim made at revision %d, want 7 (the second write's)", rev)
	}
}

// laggingOwners is an owners bucket whose reads come from a replica that
// has not applied the last write for a while (as a survivor's local
// replica right after a node released its claims): the revision it
// reads is stale, and a write at it fails, until the replica catches up.
type laggingOwners struct {
	jetstream.KeyValue
	lagFor time.Duration
	since  time.Time
}

type ownerEntry struct {
	jetstream.KeyValueEntry
	value []byte
	rev   uint64
}

func (e *ownerEntry) Value() []byte    { return e.value }
func (e *ownerEntry) Revision() uint64 { return e.rev }

func (l *laggingOwners) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	if time.Since(l.since) < l.lagFor {
		// This node's own claim, since released (a claim read as
		// another node's would first hold its replay start in the
		// sessions bucket, which this fake cluster has not).
		return &ownerEntry{value: []byte("n1-test"), rev: 3}, nil
	}
	return nil, jetstream.ErrKeyNotFound
}

func (l *laggingOwners) Update(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, errors.New("wrong last sequence: 4") // the claim at 3 was deleted
}

func (l *laggingOwners) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 5, nil
}

// A claim read from a replica that lags behind by half a second tries
// again until the replica has caught up, within its time: a lagging
// replica must not refuse the CONNECT. (Claim gave up after 50 tries, in
// under 200 ms: the likely cause of TestRollingRestart's rare 0x88 to the
// client sent to a survivor whose replica had not yet applied the
// leaving node's release.)
func TestClaimOutlastsALaggingReplica(t *testing.T) {
	c := &Cluster{
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		origin:    "n1-test",
		owners:    &laggingOwners{lagFor: 500 * time.Millisecond, since: time.Now()},
		owned:     make(map[string]uint64),
		prevOwner: make(map[string]string),
	}
	c.ready.Store(true)
	start := time.Now()
	if err := c.Claim("lagging"); err != nil {
		t.Fatalf("claim refused %v after its first read: %v", time.Since(start), err)
	}
	if rev := c.owned["lagging"]; rev != 5 {
		t.Errorf("claim made at revision %d, want 5", rev)
	}
}
