package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// SIGHUP re-reads the ACL: the new rule holds for a client that stays
// connected, and an invalid file keeps the old rules.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("topic read allowed/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gannet.yaml")
	addr := "127.0.0.1:" + freePort(t)
	yaml := "listeners:\n  - address: " + addr + "\n    anonymous: allow\nstore:\n  type: memory\nauth:\n  acl_file: " + acl + "\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gannetBin, "--config", conf, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitUntil(t, 10*time.Second, "the broker to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("stays").SetAutoReconnect(false))
	mustToken(t, c.Connect())
	defer c.Disconnect(100)
	granted := func(filter string) byte {
		tok := c.Subscribe(filter, 1, nil)
		mustToken(t, tok)
		return tok.(*mqtt.SubscribeToken).Result()[filter]
	}
	if got := granted("news/#"); got != 0x80 {
		t.Fatalf("before reload news/# granted %#x, want 0x80", got)
	}
	if err := os.WriteFile(acl, []byte("topic read allowed/#\ntopic read news/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the new ACL to apply", func() bool { return granted("news/#") == 1 })

	os.WriteFile(acl, []byte("topic frobnicate x\n"), 0o600) // invalid
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if got := granted("news/#"); got != 1 {
		t.Errorf("after an invalid ACL news/# granted %#x, want the old rules kept", got)
	}
	if !c.IsConnectionOpen() {
		t.Error("the client was disconnected by the reloads")
	}
}
