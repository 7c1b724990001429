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
