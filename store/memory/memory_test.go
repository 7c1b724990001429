package memory_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
	"github.com/gannet-mqtt/gannet/store/storetest"
)

func TestConformance(t *testing.T) {
	open := func(*testing.T) store.Store { return memory.New() }
	t.Run("Open", func(t *testing.T) { storetest.Run(t, open, nil) })
	// A broker restarted in the same process finds the same store.
	same := func(_ *testing.T, old store.Store) store.Store { return old }
	t.Run("Reopen", func(t *testing.T) { storetest.Run(t, open, same) })
}
