package config

import (
	"strings"
	"testing"
	"time"
)

// The form of webhooks (flow mappings) loads, unset keys keep
// their defaults, and Build hands the hooks over.
func TestWebhooksYAML(t *testing.T) {
	f := mustLoad(t, "gannet.yaml", `
webhooks:
  - {url: "http://127.0.0.1:9000/events", events: [client.connected, message.published], topics: ["#"]}
  - url: https://hooks.example.com/mqtt
    secret: s3cret
    payload: false
    batch: {max_events: 10, max_delay: 1s}
    queue: {max_bytes: 1MiB}
    retry: {max_attempts: 3, backoff: 1s, max_backoff: 1m}
`)
	if len(f.Webhooks) != 2 {
		t.Fatalf("webhooks: %+v", f.Webhooks)
	}
	w0, w1 := f.Webhooks[0], f.Webhooks[1]
	if w0.URL != "http://127.0.0.1:9000/events" || len(w0.Events) != 2 || w0.Topics[0] != "#" || !w0.Payload || w0.Timeout != 5*time.Second || w0.Queue.MaxBytes != 16<<20 {
		t.Errorf("webhooks[0]: %+v", w0)
	}
	if w1.Secret != "s3cret" || w1.Payload || w1.Batch.MaxEvents != 10 || w1.Queue.MaxBytes != 1<<20 || w1.Retry.MaxBackoff != time.Minute || w1.Timeout != 5*time.Second {
		t.Errorf("webhooks[1]: %+v", w1)
	}
	rt, err := f.build(&strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Webhooks) != 2 || rt.Webhooks[1].QueueMaxBytes != 1<<20 || rt.Webhooks[1].Secret != "s3cret" {
		t.Errorf("runtime webhooks: %+v", rt.Webhooks)
	}
	for i := range rt.Webhooks {
		if err := rt.Webhooks[i].Validate(); err != nil {
			t.Errorf("runtime webhook %d: %v", i, err)
		}
	}
}

// Every bad value is reported with its key and line.
func TestWebhooksErrors(t *testing.T) {
	got := errorLines(t, "gannet.yaml", `
webhooks:
  - url: ftp://x
    events: [client.connected, client.conected]
    topics: ["a/#/b"]
    queue: {max_bytes: 10}
    retry: {backoff: 0s}
  - events: []
`)
	want := []string{
		`gannet.yaml:3: webhooks[0].url: "ftp://x": want an http:// or https:// URL`,
		`gannet.yaml:4: webhooks[0].events[1]: unknown event "client.conected"; known: client.connected, client.disconnected, client.subscribed, client.unsubscribed, message.published, message.delivered, message.dropped, session.created, session.ended`,
		`gannet.yaml:5: webhooks[0].topics[0]: "a/#/b" is not a valid topic filter`,
		`gannet.yaml:6: webhooks[0].queue.max_bytes: must be at least 1KiB`,
		`gannet.yaml:7: webhooks[0].retry.backoff: must be positive`,
		`gannet.yaml:8: webhooks[1].url: required: the http:// or https:// URL events are posted to`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], strings.SplitN(want[i], ": ", 2)[1]) {
			t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// GANNET_WEBHOOKS_<n>_<KEY> sets a key of an entry, and the next index
// adds one.
func TestEnvWebhooks(t *testing.T) {
	f := mustLoad(t, "gannet.yaml", "webhooks:\n  - url: http://a/\n")
	err := f.ApplyEnv([]string{
		"GANNET_WEBHOOKS_0_SECRET=k",
		"GANNET_WEBHOOKS_1_URL=https://b/hook",
		"GANNET_WEBHOOKS_1_EVENTS=client.connected,client.disconnected",
		"GANNET_WEBHOOKS_1_QUEUE_MAX_BYTES=2MiB",
		"GANNET_WEBHOOKS_1_TLS_SERVER_NAME=b.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Webhooks) != 2 || f.Webhooks[0].Secret != "k" || f.Webhooks[1].URL != "https://b/hook" ||
		len(f.Webhooks[1].Events) != 2 || f.Webhooks[1].Queue.MaxBytes != 2<<20 || f.Webhooks[1].TLS.ServerName != "b.example" ||
		f.Webhooks[1].Retry.MaxAttempts != 5 {
		t.Errorf("webhooks: %+v", f.Webhooks)
	}
	if err := f.Validate(); err != nil {
		t.Error(err)
	}
	err = f.ApplyEnv([]string{"GANNET_WEBHOOKS_5_URL=http://c/", "GANNET_WEBHOOKS_0_NOPE=1"})
	if err == nil || !strings.Contains(err.Error(), "add new ones with the next index, 2") || !strings.Contains(err.Error(), "WEBHOOKS_<index>_<KEY>") {
		t.Errorf("bad variables: %v", err)
	}
}
