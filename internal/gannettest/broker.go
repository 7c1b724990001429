package gannettest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
)

// Deadlines of the harness. Every network wait has one, so no test can
// hang; they are long enough for a loaded 2-core machine under -race and
// only ever reached when a test fails.
const (
	// WaitFor bounds a wait for something that must happen.
	WaitFor = 5 * time.Second
	// Quiet is how long a test listens to be fairly sure something does
	// not happen, where no ping barrier can prove it.
	Quiet = 200 * time.Millisecond
)

// Logger returns a logger that discards everything unless the environment
// variable GANNET_TEST_LOG is set; then it writes debug logs to stderr.
func Logger() *slog.Logger {
	if os.Getenv("GANNET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Options returns broker.DefaultOptions with Logger and no $SYS interval:
// $SYS retained messages would reach "#" subscribers and the counters.
func Options() broker.Options {
	o := broker.DefaultOptions()
	o.Logger = Logger()
	o.SysInterval = 0
	return o
}

// Broker is a running server and the address of its listener.
type Broker struct {
	*broker.Server
	Addr string
}

// Listen returns a listener on a free loopback port.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1:0: %v", err)
	}
	return l
}

// RunBroker starts a server with opts on 127.0.0.1:0 and closes it when the
// test ends. A nil opts.Logger is replaced by Logger().
func RunBroker(t testing.TB, opts broker.Options) *Broker {
	t.Helper()
	return RunBrokerOn(t, opts, Listen(t))
}

// RunBrokerOn is RunBroker on a listener the test provides (a wrapped one,
// or one on a chosen address).
func RunBrokerOn(t testing.TB, opts broker.Options, l net.Listener) *Broker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger()
	}
	srv, err := broker.New(opts)
	if err != nil {
		l.Close()
		t.Fatalf("broker.New: %v", err)
	}
	return Serve(t, srv, l)
}

// Serve serves l with srv, a server the test built itself (to attach
// something to it before it serves). When the test ends it closes srv and
// checks that Serve returned ErrServerClosed within WaitFor.
func Serve(t testing.TB, srv *broker.Server, l net.Listener) *Broker {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, broker.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(WaitFor):
			t.Errorf("Serve did not return within %v of Close", WaitFor)
		}
	})
	return &Broker{Server: srv, Addr: l.Addr().String()}
}

// WaitSubscriptions waits until the broker holds n subscriptions.
func (b *Broker) WaitSubscriptions(t testing.TB, n int) {
	t.Helper()
	Eventually(t, fmt.Sprintf("%d subscriptions", n), func() bool { return b.Stats().Subscriptions == n })
}

// Eventually polls cond until it holds, failing the test after WaitFor.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitFor, what, cond)
}

// EventuallyWithin polls cond every 2ms until it holds, failing the test
// after d.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
