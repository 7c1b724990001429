package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
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

// scramAttempt runs one SCRAM-SHA-256 CONNECT as user with password and
// returns the CONNACK reason code.
func scramAttempt(t *testing.T, addr, id, user, password string) packet.ReasonCode {
	t.Helper()
	cl := &auth.SCRAMClient{User: user, Password: password}
	c := v5Dial(t, addr)
	defer c.nc.Close()
	c.send(scramConnect(id, cl.First()))
	switch p := c.expect().(type) {
	case *packet.Connack:
		return p.ReasonCode
	case *packet.Auth:
		final, err := cl.Final(p.Properties.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		reply := &packet.Auth{ReasonCode: packet.ContinueAuthentication}
		reply.Properties.SetString(packet.PropAuthMethod, "SCRAM-SHA-256")
		reply.Properties.SetBinary(packet.PropAuthData, final)
		c.send(reply)
		return expectPacket[*packet.Connack](c).ReasonCode
	default:
		t.Fatalf("got %T, want AUTH or CONNACK", p)
		return 0
	}
}

// Failed SCRAM exchanges (5.0 enhanced authentication) count in the
// failed-login budget of their address, as wrong passwords do: past the
// burst, the address is refused with 0x9F unchecked, even with the right
// password; without it, SCRAM would be an unlimited password oracle.
func TestSCRAMFailuresCountInLoginLimits(t *testing.T) {
	sc := auth.NewSCRAM()
	cred, err := auth.NewSCRAMCredential([]byte("s3cret"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	sc.SetUser("carol", cred)
	opts := testOptions()
	opts.EnhancedAuth = []auth.EnhancedAuth{sc}
	opts.LoginLimits.SourceFailureRate, opts.LoginLimits.SourceFailureBurst = 0.01, 3
	opts.LoginLimits.UserFailureRate = 0 // only the address's budget
	b := runBroker(t, opts)
	for i := range 3 {
		if rc := scramAttempt(t, b.Addr, fmt.Sprintf("guess-%d", i), "carol", "wrong"); rc != packet.NotAuthorized {
			t.Fatalf("wrong password %d: CONNACK %v, want 0x87", i, rc)
		}
	}
	if rc := scramAttempt(t, b.Addr, "right", "carol", "s3cret"); rc != packet.ConnectionRateExceeded {
		t.Errorf("SCRAM login after 3 failed ones from the address (burst 3): CONNACK %v, want 0x9F Connection rate exceeded", rc)
	}
}

// A failed SCRAM exchange also counts in the user's failure budget, which
// password logins of that user are held to.
func TestSCRAMFailuresCountInUserBudget(t *testing.T) {
	sc := auth.NewSCRAM()
	cred, err := auth.NewSCRAMCredential([]byte("s3cret"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	sc.SetUser("carol", cred)
	opts := testOptions()
	opts.EnhancedAuth = []auth.EnhancedAuth{sc}
	opts.Authenticator = allowAll{}
	opts.LoginLimits.UserFailureRate, opts.LoginLimits.UserFailureBurst = 0.01, 2
	opts.LoginLimits.SourceFailureRate = 0 // only the user's budget
	b := runBroker(t, opts)
	for i := range 2 {
		if rc := scramAttempt(t, b.Addr, fmt.Sprintf("guess-%d", i), "carol", "wrong"); rc != packet.NotAuthorized {
			t.Fatalf("wrong password %d: CONNACK %v, want 0x87", i, rc)
		}
	}
	p := v5Connect("carol-pw")
	p.UsernameFlag, p.Username, p.PasswordFlag, p.Password = true, "carol", true, []byte("anything")
	c := v5Dial(t, b.Addr)
	defer c.nc.Close()
	c.send(p)
	if rc := expectPacket[*packet.Connack](c).ReasonCode; rc != packet.ConnectionRateExceeded {
		t.Errorf("password login of carol after 2 failed SCRAM exchanges (burst 2): CONNACK %v, want 0x9F", rc)
	}
}

// allowAll accepts every password: a password login is refused only by the
// login limits.
type allowAll struct{}

func (allowAll) Authenticate(context.Context, *auth.Client) (auth.Result, error) {
	return auth.Allow, nil
}

// CheckRetainSource (mosquitto's check_retain_source) holds for retained
// messages restored from the store after a restart: the store keeps the
// publisher, whose write access is checked against the ACL in force, as it
// is for a message retained since the start.
func TestCheckRetainSourceAfterRestart(t *testing.T) {
	st := memory.New()
	start := func(acl string) *testBroker {
		t.Helper()
		a, err := auth.ParseACL("acl", strings.NewReader(acl))
		if err != nil {
			t.Fatal(err)
		}
		opts := testOptions()
		opts.Store = st
		opts.Authenticator = allowAll{}
		opts.Authorizer = a
		opts.CheckRetainSource = true
		return runBroker(t, opts)
	}
	as := func(id, user string) *packet.Connect {
		p := connectPacket(id)
		p.UsernameFlag, p.Username, p.PasswordFlag, p.Password = true, user, true, []byte("x")
		return p
	}
	b := start("user w\ntopic write r/#\nuser s\ntopic read #\n")
	w, _ := connectOK(t, b.Addr, as("writer", "w"))
	w.publish("r/1", "from w", 1, true)
	b.Close()

	// Restarted with w's write access taken away.
	b = start("user s\ntopic read #\n")
	s, _ := connectOK(t, b.Addr, as("reader", "s"))
	s.sub("r/#", 1)
	s.sync() // a retained message would have come before the PINGRESP
}
