package memory_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

func TestDelayedStore(t *testing.T) {
	storetest.RunDelayed(t, func(*testing.T) store.Store { return memory.New() },
		func(_ *testing.T, old store.Store) store.Store { return old })
}
