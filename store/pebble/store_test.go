package pebble_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

// open opens a store in a new temporary directory.
func open(t testing.TB, opts pebble.Options) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reopen closes s and opens its directory again.
func reopen(t testing.TB, s *pebble.Store, opts pebble.Options) *pebble.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := pebble.Open(s.Dir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, mode := range []pebble.Fsync{pebble.Always, pebble.Never} {
		opts := pebble.DefaultOptions()
		opts.Fsync = mode
		t.Run(mode.String(), func(t *testing.T) {
			storetest.Run(t,
				func(t *testing.T) store.Store { return open(t, opts) },
				func(t *testing.T, old store.Store) store.Store { return reopen(t, old.(*pebble.Store), opts) })
		})
	}
}
