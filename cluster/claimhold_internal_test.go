package cluster

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// slowSessions is a sessions bucket whose reads of a node's checkpoint
// answer after read (a consumer made slowly: a loaded machine, or one
// answered by a direct get after a consumer's timeout) and whose writes
// take write: a hold before a claim (holdBeforeClaim) then takes about as
// long as a claim's attempt (claimAttempt) or longer.
type slowSessions struct {
	jetstream.KeyValue // nil: only WatchFiltered and Put are used
	read, write        time.Duration
	reads              atomic.Int32
}

type slowWatch struct{ ch chan jetstream.KeyValueEntry }

func (w *slowWatch) Updates() <-chan jetstream.KeyValueEntry { return w.ch }
func (w *slowWatch) Stop() error                             { return nil }

func (s *slowSessions) WatchFiltered(ctx context.Context, keys []string, _ ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	s.reads.Add(1)
	w := &slowWatch{ch: make(chan jetstream.KeyValueEntry, 2)}
	go func() {
		select {
		case <-time.After(s.read):
		case <-ctx.Done():
			return
		}
		w.ch <- &ownerEntry{value: []byte("42"), rev: 9} // the previous owner's checkpoint
		w.ch <- nil                                      // all current entries sent
	}()
	return w, nil
}

func (s *slowSessions) Put(ctx context.Context, _ string, _ []byte) (uint64, error) {
	select {
	case <-time.After(s.write):
		return 10, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// ownedByOther is an owners bucket where another node owns the client
// identifier; its writes honour their context, as a request to JetStream
// does.
type ownedByOther struct {
	jetstream.KeyValue
	updates atomic.Int32
}

func (o *ownedByOther) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return &ownerEntry{value: []byte("n2-other"), rev: 3}, nil
}

func (o *ownedByOther) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	o.updates.Add(1)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 4, nil
}

// A claim from another node first holds that node's checkpoint for the
// session (a read, then a write of this node's checkpoint); the claim's
// compare-and-set then gets its own attempt's time. The hold here takes
// longer than an attempt (claimAttempt): the compare-and-set made within
// what the hold had left of its attempt always met an ended context, the
// claim read and held again, and the CONNECT was refused with 0x88 after
// the claim's 3 s (TestConnectWithoutMetaLeader: a CONNECT without a meta
// leader, whose read of the checkpoint waits a second for a consumer).
// The checkpoint is read once per claim.
func TestClaimFitsItsHold(t *testing.T) {
	sessions := &slowSessions{read: 700 * time.Millisecond, write: 500 * time.Millisecond}
	owners := &ownedByOther{}
	c := &Cluster{
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		origin:         "n1-test",
		owners:         owners,
		sessions:       sessions,
		owned:          make(map[string]uint64),
		prevOwner:      make(map[string]string),
		prevCheckpoint: make(map[string]uint64),
		replays:        make(map[int]*replayHold),
		base:           context.Background(),
		stop:           make(chan struct{}),
	}
	c.ready.Store(true)
	start := time.Now()
	// takeFrom's request needs a NATS connection: the claim's own part
	// ends before it; test it alone.
	prev, err := c.claimOwner("slowhold")
	if err != nil {
		t.Fatalf("claim refused %v after it began (%d checkpoint reads, %d compare-and-sets): %v",
			time.Since(start), sessions.reads.Load(), owners.updates.Load(), err)
	}
	if prev != "n2-other" {
		t.Errorf("previous owner %q, want n2-other", prev)
	}
	if rev := c.owned["slowhold"]; rev != 4 {
		t.Errorf("claim made at revision %d, want 4", rev)
	}
	if from, ok := c.prevCheckpoint["slowhold"]; !ok || from != 42 {
		t.Errorf("replay start held %d (%v), want 42, the previous owner's checkpoint", from, ok)
	}
	if n := sessions.reads.Load(); n != 1 {
		t.Errorf("the previous owner's checkpoint was read %d times, want once", n)
	}
}
