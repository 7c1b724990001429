package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/store"
)

// The store timings are process-wide: every MeteredStore adds to them and
// every Admin's /metrics shows them.
var (
	storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gannet_store_operation_seconds",
		Help: "Time of each call to the broker's store, by operation. Load operations include the broker's work on what they load.",
		// 5µs (a map write) to 1.3s (an fsync on a busy disk).
		Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10),
	}, []string{"op"})
	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gannet_store_errors_total",
		Help: "Calls to the broker's store that returned an error, by operation (store.ErrNotFound included).",
	}, []string{"op"})
)

// Store operations, the op label values.
const (
	opSaveSession    = "save_session"
	opDeleteSession  = "delete_session"
	opLoadSessions   = "load_sessions"
	opAppend         = "append"
	opUpdate         = "update"
	opRemove         = "remove"
	opLoadQueue      = "load_queue"
	opSetRetained    = "set_retained"
	opDeleteRetained = "delete_retained"
	opLoadRetained   = "load_retained"
	opSync           = "sync"
	opClose          = "close"
)

// opMeter is the histogram and error counter of one operation, resolved
// once so that a call costs no label lookup.
type opMeter struct {
	seconds prometheus.Observer
	errors  prometheus.Counter
}

func newOpMeter(op string) opMeter {
	return opMeter{seconds: storeSeconds.WithLabelValues(op), errors: storeErrors.WithLabelValues(op)}
}

// done records a call that started at start and returned err.
func (m opMeter) done(start time.Time, err error) error {
	m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.Inc()
	}
	return err
}

// MeteredStore returns st with the time of each call recorded in the
// histogram gannet_store_operation_seconds{op=...} and each error counted
// in gannet_store_errors_total{op=...}. The result implements
// store.Syncer exactly when st does, so the broker's durability logic
// sees the same store. MeteredStore(nil) is nil, which leaves the broker
// its in-memory default.
func MeteredStore(st store.Store) store.Store {
	if st == nil {
		return nil
	}
	m := &meteredStore{
		inner:          st,
		saveSession:    newOpMeter(opSaveSession),
		deleteSession:  newOpMeter(opDeleteSession),
		loadSessions:   newOpMeter(opLoadSessions),
		append:         newOpMeter(opAppend),
		update:         newOpMeter(opUpdate),
		remove:         newOpMeter(opRemove),
		loadQueue:      newOpMeter(opLoadQueue),
		setRetained:    newOpMeter(opSetRetained),
		deleteRetained: newOpMeter(opDeleteRetained),
		loadRetained:   newOpMeter(opLoadRetained),
		close:          newOpMeter(opClose),
	}
	if sy, ok := st.(store.Syncer); ok {
		return &meteredSyncStore{meteredStore: m, syncer: sy, sync: newOpMeter(opSync)}
	}
	return m
}

// Unwrap returns the store it times, so the broker finds the inner store's
// optional capabilities (store.InboundStore, store.QueueSeeker).
func (m *meteredStore) Unwrap() store.Store { return m.inner }

// meteredStore times the calls of a store without Sync.
type meteredStore struct {
	inner store.Store

	saveSession, deleteSession, loadSessions         opMeter
	append, update, remove, loadQueue                opMeter
	setRetained, deleteRetained, loadRetained, close opMeter
}

// meteredSyncStore is a meteredStore whose store has Sync.
type meteredSyncStore struct {
	*meteredStore
	syncer store.Syncer
	sync   opMeter
}

var (
	_ store.Store  = (*meteredStore)(nil)
	_ store.Syncer = (*meteredSyncStore)(nil)
)

func (m *meteredSyncStore) Sync() error {
	start := time.Now()
	return m.sync.done(start, m.syncer.Sync())
}

func (m *meteredStore) SaveSession(s *store.Session) error {
	start := time.Now()
	return m.saveSession.done(start, m.inner.SaveSession(s))
}

func (m *meteredStore) DeleteSession(clientID string) error {
	start := time.Now()
	return m.deleteSession.done(start, m.inner.DeleteSession(clientID))
}

func (m *meteredStore) LoadSessions(fn func(*store.Session) error) error {
	start := time.Now()
	return m.loadSessions.done(start, m.inner.LoadSessions(fn))
}

func (m *meteredStore) Append(clientID string, entries ...*store.Entry) error {
	start := time.Now()
	return m.append.done(start, m.inner.Append(clientID, entries...))
}

func (m *meteredStore) Update(clientID string, e *store.Entry) error {
	start := time.Now()
	return m.update.done(start, m.inner.Update(clientID, e))
}

func (m *meteredStore) Remove(clientID string, seq uint64) error {
	start := time.Now()
	return m.remove.done(start, m.inner.Remove(clientID, seq))
}

func (m *meteredStore) LoadQueue(clientID string, fn func(*store.Entry) error) error {
	start := time.Now()
	return m.loadQueue.done(start, m.inner.LoadQueue(clientID, fn))
}

func (m *meteredStore) SetRetained(msg *store.Message) error {
	start := time.Now()
	return m.setRetained.done(start, m.inner.SetRetained(msg))
}

func (m *meteredStore) DeleteRetained(topic string) error {
	start := time.Now()
	return m.deleteRetained.done(start, m.inner.DeleteRetained(topic))
}

func (m *meteredStore) LoadRetained(fn func(*store.Message) error) error {
	start := time.Now()
	return m.loadRetained.done(start, m.inner.LoadRetained(fn))
}

func (m *meteredStore) Close() error {
	start := time.Now()
	return m.close.done(start, m.inner.Close())
}
