package broker_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/store"
	"github.com/gannet-mqtt/gannet/store/memory"
)

// slowDeleteStore makes each DeleteRetained take a while, tells when the
// first starts, and counts those made after closed is set.
type slowDeleteStore struct {
	*memory.Store
	first   chan struct{}
	once    sync.Once
	closed  atomic.Bool
	late    atomic.Int32
	deleted atomic.Int32
}

func (s *slowDeleteStore) DeleteRetained(topic string) error {
	s.once.Do(func() { close(s.first) })
	if s.closed.Load() {
		s.late.Add(1)
	}
	s.deleted.Add(1)
	time.Sleep(time.Millisecond)
	return s.Store.DeleteRetained(topic)
}

// The sweep of expired retained messages writes to the store: Close waits
// for a sweep under way, so that nothing reaches a store the caller closes
// once Close has returned.
func TestCloseWaitsForRetainedSweep(t *testing.T) {
	st := &slowDeleteStore{Store: memory.New(), first: make(chan struct{})}
	expiry := time.Now().Add(300 * time.Millisecond)
	for i := range 200 {
		if err := st.SetRetained(&store.Message{ID: uint64(i + 1), Topic: fmt.Sprintf("sweep/%d", i), Payload: []byte("x"), QoS: 1, Retain: true, Created: time.Now(), Expiry: expiry}); err != nil {
			t.Fatal(err)
		}
	}
	opts := testOptions()
	opts.Store = st
	b := runBroker(t, opts)
	select {
	case <-st.first:
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep of expired retained messages did not run")
	}
	b.Close()
	st.closed.Store(true) // the caller would close the store now
	time.Sleep(100 * time.Millisecond)
	if n := st.late.Load(); n > 0 {
		t.Errorf("%d retained messages deleted from the store after Close returned (of %d)", n, st.deleted.Load())
	}
}

// ServeListener after Close closes the listener it is given and returns at
// once, as Close closes the listeners it serves: a client dialling it is
// refused, not left waiting in the backlog.
func TestServeListenerAfterCloseClosesIt(t *testing.T) {
	srv, err := broker.New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	l := listen(t)
	defer l.Close()
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(l, broker.ListenerOptions{}) }()
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("ServeListener after Close = %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener after Close did not return")
	}
	c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
	if err == nil {
		c.Close()
		t.Error("the listener passed to ServeListener after Close still accepts connections")
	}
}
