package storetest

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/store"
)

// RunDelayed checks a store.DelayedStore: held messages come back, in ID
// order, with every field of the message and the due time, after a reopen
// when reopen is not nil; a removed one does not.
func RunDelayed(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, old store.Store) store.Store) {
	st := open(t)
	ds, ok := store.Find[store.DelayedStore](st)
	if !ok {
		t.Fatalf("%T does not implement store.DelayedStore", st)
	}
	due := time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.UTC)
	want := []*store.Delayed{
		{ID: 3, Due: due, Message: Sample(3, "later/a", "payload a")},
		{ID: 1, Due: due.Add(time.Hour), Message: Plain(1, "later/b", "")},
		{ID: 1 << 40, Due: due.Add(-time.Hour), Message: Plain(1<<40, "later/c", "c")},
		{ID: 2, Due: due, Message: Plain(2, "later/gone", "x")},
	}
	want[0].Message.Retain = true
	want[0].Message.Properties.SubscriptionIDs = nil // never stored with a delayed message
	for _, d := range want {
		if err := ds.AddDelayed(d); err != nil {
			t.Fatalf("AddDelayed %d: %v", d.ID, err)
		}
	}
	if err := ds.RemoveDelayed(2); err != nil {
		t.Fatalf("RemoveDelayed: %v", err)
	}
	if err := ds.RemoveDelayed(99); err != nil {
		t.Fatalf("RemoveDelayed of an unknown ID: %v", err)
	}
	if reopen != nil {
		st = reopen(t, st)
		ds, _ = store.Find[store.DelayedStore](st)
	}
	var got []*store.Delayed
	if err := ds.LoadDelayed(func(d *store.Delayed) error { got = append(got, d); return nil }); err != nil {
		t.Fatalf("LoadDelayed: %v", err)
	}
	order := []int{1, 0, 2} // by ID: 1, 3, 1<<40
	if len(got) != len(order) {
		t.Fatalf("loaded %d delayed messages, want %d", len(got), len(order))
	}
	for i, w := range order {
		g, wd := got[i], want[w]
		if g.ID != wd.ID || !g.Due.Equal(wd.Due) {
			t.Errorf("delayed %d: ID %d due %v, want %d due %v", i, g.ID, g.Due, wd.ID, wd.Due)
		}
		if d := DiffMessage(wd.Message, g.Message); d != "" {
			t.Errorf("delayed %d: message %s", wd.ID, d)
		}
	}
	if c, ok := st.(interface{ Close() error }); ok {
		c.Close()
	}
}
