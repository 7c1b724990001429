package pebble_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/pebble"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

// Delayed messages survive a reopen of the store.
func TestDelayedStore(t *testing.T) {
	opts := pebble.DefaultOptions()
	storetest.RunDelayed(t,
		func(t *testing.T) store.Store { return open(t, opts) },
		func(t *testing.T, old store.Store) store.Store { return reopen(t, old.(*pebble.Store), opts) })
}
