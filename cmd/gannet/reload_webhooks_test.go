package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// SIGHUP reloads the webhooks with the rest of the configuration: after
// the URL changes, events go to the new endpoint and no longer to the old.
func TestReloadWebhooksOnSIGHUP(t *testing.T) {
	var oldHits, newHits atomic.Int32
	endpoint := func(n *atomic.Int32) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), "reload/hooks") {
				n.Add(1)
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	oldSrv, newSrv := endpoint(&oldHits), endpoint(&newHits)

	dir := t.TempDir()
	conf := filepath.Join(dir, "gannet.yaml")
	addr := "127.0.0.1:" + freePort(t)
	write := func(url string) {
		t.Helper()
		yaml := "listeners:\n  - address: " + addr + "\n    anonymous: allow\nstore:\n  type: memory\n" +
			"webhooks:\n  - {url: \"" + url + "\", events: [message.published], batch: {max_delay: 10ms}}\n"
		if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oldSrv.URL)
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
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("hooks-pub").SetAutoReconnect(false))
	mustToken(t, c.Connect())
	defer c.Disconnect(100)
	publish := func() { mustToken(t, c.Publish("reload/hooks", 1, false, "x")) }

	waitUntil(t, 10*time.Second, "the first webhook to receive an event", func() bool {
		publish()
		return oldHits.Load() > 0
	})
	write(newSrv.URL)
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the reloaded webhook to receive an event", func() bool {
		publish()
		return newHits.Load() > 0
	})
	time.Sleep(200 * time.Millisecond) // what the old engine still held has gone out
	before := oldHits.Load()
	for range 5 {
		publish()
	}
	time.Sleep(300 * time.Millisecond)
	if n := oldHits.Load() - before; n > 0 {
		t.Errorf("the old webhook still received %d events after the reload", n)
	}
}
