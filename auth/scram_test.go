package auth

import (
	"errors"
	"testing"
)

func TestSCRAMExchange(t *testing.T) {
	s := NewSCRAM()
	cred, err := NewSCRAMCredential([]byte("pencil"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	s.SetUser("user,with=odd", cred)

	run := func(user, password string) error {
		c := &SCRAMClient{User: user, Password: password}
		ex := s.Start(&Client{})
		first, done, err := ex.Step(c.First())
		if err != nil || done {
			return err
		}
		final, err := c.Final(first)
		if err != nil {
			return err
		}
		last, done, err := ex.Step(final)
		if err != nil {
			return err
		}
		if !done {
			t.Fatal("exchange not done after client-final")
		}
		if got := ex.(Identified).Username(); got != user {
			t.Errorf("Username() = %q, want %q", got, user)
		}
		return c.Verify(last)
	}
	if err := run("user,with=odd", "pencil"); err != nil {
		t.Fatalf("good password: %v", err)
	}
	if err := run("user,with=odd", "pen"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("bad password: %v, want ErrAuthFailed", err)
	}
	if err := run("nobody", "pencil"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("unknown user: %v, want ErrAuthFailed", err)
	}
	ex := s.Start(&Client{})
	if _, _, err := ex.Step([]byte("p=tls-server-end-point,,n=u,r=x")); err == nil {
		t.Error("channel binding request accepted")
	}
}
