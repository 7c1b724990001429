package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading several keys of a bucket without a consumer.
//
// A KV watch or key listing creates a consumer, which the JetStream meta
// leader places on a replica of the bucket; until the survivors notice a
// dead node (NATS marks it offline only after minutes), it may place it on
// that node, and the request waits out its timeout; and while the meta
// leader itself is being elected (1.5 to 2.25 s after it died, election.go) no consumer can
// be made at all. A client's CONNECT reads its session this way, so a kill
// of any node could stall the CONNECTs of that node's clients on the
// survivors for seconds.
//
// A batch direct get ("multi_last", nats-server 2.11 and later) is
// answered by any replica that is current, the local one first, with no
// meta leader, no stream leader and no consumer; but a replica applies a
// write a moment after the write is acknowledged, so a read that follows
// another node's write at once could miss it. The reads of the CONNECT
// path therefore go through a consumer first, and by a direct get only
// when the consumer has not answered within consumerTimeout, and only
// where this node's own replica (which answers first: NATS prefers a
// local queue subscriber) is current: it has heard from the bucket's
// leader lately, is not catching up, and has applied all it committed.

// directGetTimeout bounds one batch direct get; past it the read falls
// back to a consumer.
const directGetTimeout = 2 * time.Second

// errDirect says a batch direct get could not answer (too many keys, no
// replica serving direct gets, an older server): read with a consumer.
var errDirect = errors.New("cluster: batch direct get unavailable")

// directEntry is a KV entry read by a direct get.
type directEntry struct {
	bucket, key string
	value       []byte
	rev         uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e *directEntry) Bucket() string                  { return e.bucket }
func (e *directEntry) Key() string                     { return e.key }
func (e *directEntry) Value() []byte                   { return e.value }
func (e *directEntry) Revision() uint64                { return e.rev }
func (e *directEntry) Created() time.Time              { return e.created }
func (e *directEntry) Delta() uint64                   { return 0 }
func (e *directEntry) Operation() jetstream.KeyValueOp { return e.op }

// directLast returns the current entry of every key of kv that matches
// one of filters (KV key filters, wildcards allowed), deleted keys left
// out, in no particular order.
func (c *Cluster) directLast(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]jetstream.KeyValueEntry, error) {
	bucket := kv.Bucket()
	if c.ns == nil || !c.ns.JetStreamIsStreamCurrent(c.ns.GlobalAccount().Name, "KV_"+bucket) {
		return nil, fmt.Errorf("%w: this node's replica of %s is not current", errDirect, bucket)
	}
	prefix := "$KV." + bucket + "."
	subjects := make([]string, len(filters))
	for i, f := range filters {
		subjects[i] = prefix + f
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, directGetTimeout)
	defer cancel()
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+bucket, inbox, req); err != nil {
		return nil, err
	}
	var out []jetstream.KeyValueEntry
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errDirect, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return out, nil
		case "404": // nothing matches
			return out, nil
		case "503":
			return nil, fmt.Errorf("%w: %v", errDirect, nats.ErrNoResponders)
		default:
			return nil, fmt.Errorf("%w: status %s %s", errDirect, status, m.Header.Get("Description"))
		}
		subj := m.Header.Get(jetstream.SubjectHeader)
		key, ok := strings.CutPrefix(subj, prefix)
		if !ok {
			return nil, fmt.Errorf("%w: answer for subject %q", errDirect, subj)
		}
		switch m.Header.Get("KV-Operation") {
		case "DEL", "PURGE":
			continue
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: sequence %q", errDirect, m.Header.Get(jetstream.SequenceHeader))
		}
		created, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
		out = append(out, &directEntry{bucket: bucket, key: key, value: m.Data, rev: seq, created: created, op: jetstream.KeyValuePut})
	}
}

// consumerTimeout bounds a read through a consumer on the paths where a
// batch direct get can stand in for it.
const consumerTimeout = time.Second

// readKeys returns the current entries of kv's keys that match filters:
// through a consumer (a watch), which the meta leader places, preferring
// replicas that are caught up; or, when that cannot answer within
// consumerTimeout (no meta leader, or the consumer placed on a dead node),
// by a batch direct get, answered by any replica that is current (within
// the time it takes a write to be applied there, which has passed by then).
func (c *Cluster) readKeys(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]jetstream.KeyValueEntry, error) {
	wctx, cancel := context.WithTimeout(ctx, consumerTimeout)
	all, err := watchKeys(wctx, kv, filters)
	cancel()
	if err == nil || ctx.Err() != nil {
		return all, err
	}
	all, derr := c.directLast(ctx, kv, filters...)
	if derr != nil {
		return nil, errors.Join(err, derr)
	}
	c.log.Debug("cluster: a bucket read through a consumer did not answer; read by a direct get", "bucket", kv.Bucket(), "error", err)
	return all, nil
}

// watchKeys reads the current entries of kv's keys that match filters
// through a watch.
func watchKeys(ctx context.Context, kv jetstream.KeyValue, filters []string) ([]jetstream.KeyValueEntry, error) {
	// WatchFiltered rewrites the slice it is given into subjects.
	w, err := kv.WatchFiltered(ctx, slices.Clone(filters), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var all []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, errors.New("watcher stopped")
			case e == nil: // everything current has come
				return all, nil
			default:
				all = append(all, e)
			}
		}
	}
}

// readKeyNames returns the keys of kv that match filters, sorted: listed
// through a consumer, or by a batch direct get when that cannot answer
// within consumerTimeout (see readKeys).
func (c *Cluster) readKeyNames(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]string, error) {
	wctx, cancel := context.WithTimeout(ctx, consumerTimeout)
	keys, err := consumerKeys(wctx, kv, filters)
	cancel()
	if err == nil || ctx.Err() != nil {
		return keys, err
	}
	es, derr := c.directLast(ctx, kv, filters...)
	if derr != nil {
		return nil, errors.Join(err, derr)
	}
	keys = make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key()
	}
	sort.Strings(keys)
	return keys, nil
}

// consumerKeys lists the keys of kv that match filters through a
// consumer, sorted.
func consumerKeys(ctx context.Context, kv jetstream.KeyValue, filters []string) ([]string, error) {
	kl, err := kv.ListKeysFiltered(ctx, slices.Clone(filters)...) // rewritten into subjects
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	defer kl.Stop()
	var keys []string
	for k := range kl.Keys() {
		keys = append(keys, k)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the listing ended with the context
	}
	sort.Strings(keys)
	return keys, nil
}
