package admin_test

import (
	"errors"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// syncStore is an in-memory store with Sync, counting the calls.
type syncStore struct {
	store.Store
	syncs   int
	syncErr error
}

func (s *syncStore) Sync() error {
	s.syncs++
	return s.syncErr
}

// failingStore fails SaveSession.
type failingStore struct{ store.Store }

var errDisk = errors.New("disk on fire")

func (failingStore) SaveSession(*store.Session) error { return errDisk }

// storeCount returns the count of a store histogram or error counter for op.
func storeCount(t *testing.T, a *admin.Admin, name, op string) float64 {
	t.Helper()
	fams, err := a.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if hasLabels(m, []string{"op", op}) {
				if f.GetType() == dto.MetricType_HISTOGRAM {
					return float64(m.GetHistogram().GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestMeteredStoreSyncer(t *testing.T) {
	if admin.MeteredStore(nil) != nil {
		t.Error("MeteredStore(nil) is not nil")
	}
	plain := admin.MeteredStore(memory.New())
	if _, ok := plain.(store.Syncer); ok {
		t.Error("MeteredStore of a store without Sync has Sync")
	}

	b := runBroker(t, nil)
	a := runAdmin(t, b.Server, admin.Options{}).Admin
	inner := &syncStore{Store: memory.New()}
	st := admin.MeteredStore(inner)
	sy, ok := st.(store.Syncer)
	if !ok {
		t.Fatal("MeteredStore of a store with Sync has no Sync")
	}
	before := storeCount(t, a, "gannet_store_operation_seconds", "sync")
	beforeErr := storeCount(t, a, "gannet_store_errors_total", "sync")
	if err := sy.Sync(); err != nil {
		t.Fatal(err)
	}
	inner.syncErr = errDisk
	if err := sy.Sync(); !errors.Is(err, errDisk) {
		t.Errorf("Sync error %v, want %v", err, errDisk)
	}
	if inner.syncs != 2 {
		t.Errorf("inner Sync called %d times, want 2", inner.syncs)
	}
	if n := storeCount(t, a, "gannet_store_operation_seconds", "sync") - before; n != 2 {
		t.Errorf("sync timed %v times, want 2", n)
	}
	if n := storeCount(t, a, "gannet_store_errors_total", "sync") - beforeErr; n != 1 {
		t.Errorf("sync errors counted %v, want 1", n)
	}
}

func TestMeteredStoreForwards(t *testing.T) {
	b := runBroker(t, nil)
	a := runAdmin(t, b.Server, admin.Options{}).Admin
	st := admin.MeteredStore(memory.New())
	ops := map[string]float64{}
	for _, op := range []string{"save_session", "load_sessions", "delete_session", "append", "update", "load_queue", "remove", "set_retained", "load_retained", "delete_retained", "close"} {
		ops[op] = storeCount(t, a, "gannet_store_operation_seconds", op)
	}

	sess := &store.Session{ClientID: "c", Version: 4}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("SaveSession", st.SaveSession(sess))
	var loaded []string
	must("LoadSessions", st.LoadSessions(func(s *store.Session) error { loaded = append(loaded, s.ClientID); return nil }))
	if len(loaded) != 1 || loaded[0] != "c" {
		t.Errorf("LoadSessions gave %v", loaded)
	}
	msg := &store.Message{ID: 1, Topic: "t", Payload: []byte("p"), QoS: 1}
	must("Append", st.Append("c", &store.Entry{Seq: 1, Message: msg, QoS: 1}))
	must("Update", st.Update("c", &store.Entry{Seq: 1, Message: msg, QoS: 1, PacketID: 9, State: store.EntrySent}))
	var entries []*store.Entry
	must("LoadQueue", st.LoadQueue("c", func(e *store.Entry) error { entries = append(entries, e); return nil }))
	if len(entries) != 1 || entries[0].PacketID != 9 {
		t.Errorf("LoadQueue gave %+v", entries)
	}
	must("Remove", st.Remove("c", 1))
	must("SetRetained", st.SetRetained(&store.Message{ID: 2, Topic: "r", Payload: []byte("x")}))
	var retained []string
	must("LoadRetained", st.LoadRetained(func(m *store.Message) error { retained = append(retained, m.Topic); return nil }))
	if len(retained) != 1 || retained[0] != "r" {
		t.Errorf("LoadRetained gave %v", retained)
	}
	must("DeleteRetained", st.DeleteRetained("r"))
	must("DeleteSession", st.DeleteSession("c"))
	must("Close", st.Close())

	for op, before := range ops {
		if n := storeCount(t, a, "gannet_store_operation_seconds", op) - before; n != 1 {
			t.Errorf("op %s timed %v times, want 1", op, n)
		}
	}

	// Errors pass through unchanged and are counted.
	fs := admin.MeteredStore(failingStore{memory.New()})
	before := storeCount(t, a, "gannet_store_errors_total", "save_session")
	if err := fs.SaveSession(sess); !errors.Is(err, errDisk) {
		t.Errorf("SaveSession error %v, want %v", err, errDisk)
	}
	if n := storeCount(t, a, "gannet_store_errors_total", "save_session") - before; n != 1 {
		t.Errorf("save_session errors counted %v, want 1", n)
	}
}

// BenchmarkMeteredStoreAppend shows the decorator's cost per call over the
// in-memory store.
func BenchmarkMeteredStoreAppend(b *testing.B) {
	for _, tc := range []struct {
		name string
		st   store.Store
	}{{"memory", memory.New()}, {"metered", admin.MeteredStore(memory.New())}} {
		b.Run(tc.name, func(b *testing.B) {
			msg := &store.Message{ID: 1, Topic: "t", Payload: []byte("p"), QoS: 1}
			e := &store.Entry{Message: msg, QoS: 1}
			b.ReportAllocs()
			for i := range b.N {
				e.Seq = uint64(i)
				tc.st.Append("c", e)
				tc.st.Remove("c", uint64(i))
			}
		})
	}
}

// The broker finds the wrapped store's optional capabilities through
// MeteredStore: inbound QoS 2 identifiers and queue seeking.
func TestMeteredStoreUnwraps(t *testing.T) {
	wrapped := admin.MeteredStore(memory.New())
	if _, ok := store.Find[store.InboundStore](wrapped); !ok {
		t.Error("store.InboundStore not found through MeteredStore")
	}
	if _, ok := store.Find[store.QueueSeeker](wrapped); ok {
		t.Error("store.QueueSeeker found, but the memory store has none")
	}
}
