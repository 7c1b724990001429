package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/topic"
	"github.com/gannet-mqtt/gannet/webhook"
)

// Webhook is one entry of webhooks: an HTTP endpoint the broker posts its
// events to (see webhook.Hook).
type Webhook struct {
	Name    string        `yaml:"name,omitempty"`
	URL     string        `yaml:"url"`
	Events  []string      `yaml:"events"`
	Topics  []string      `yaml:"topics"`
	Secret  string        `yaml:"secret,omitempty"`
	Payload bool          `yaml:"payload"`
	Timeout time.Duration `yaml:"timeout"`
	Batch   WebhookBatch  `yaml:"batch"`
	Queue   WebhookQueue  `yaml:"queue"`
	Retry   WebhookRetry  `yaml:"retry"`
	TLS     WebhookTLS    `yaml:"tls,omitempty"`
}

// WebhookBatch: at most MaxEvents per request; the first event waits up to
// MaxDelay for others.
type WebhookBatch struct {
	MaxEvents int           `yaml:"max_events"`
	MaxDelay  time.Duration `yaml:"max_delay"`
}

// WebhookQueue bounds the events waiting to be sent.
type WebhookQueue struct {
	MaxBytes Size `yaml:"max_bytes"`
}

// WebhookRetry: each batch is tried MaxAttempts times, waiting Backoff,
// doubling up to MaxBackoff.
type WebhookRetry struct {
	MaxAttempts int           `yaml:"max_attempts"`
	Backoff     time.Duration `yaml:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
}

// WebhookTLS is the TLS of an https endpoint.
type WebhookTLS struct {
	CAFile     string `yaml:"ca_file,omitempty"`
	CertFile   string `yaml:"cert_file,omitempty"`
	KeyFile    string `yaml:"key_file,omitempty"`
	ServerName string `yaml:"server_name,omitempty"`
}

var (
	webhookType   = reflect.TypeFor[Webhook]()
	webhookLeaves = collectLeaves(webhookType, "", nil)
	envWebhook    = envNames(webhookLeaves)
)

// defaultWebhook is what a new entry of webhooks starts from.
func defaultWebhook() Webhook {
	h := webhook.DefaultHook()
	return Webhook{
		Payload: h.Payload,
		Timeout: h.Timeout,
		Batch:   WebhookBatch{MaxEvents: h.BatchMaxEvents, MaxDelay: h.BatchMaxDelay},
		Queue:   WebhookQueue{MaxBytes: Size(h.QueueMaxBytes)},
		Retry:   WebhookRetry{MaxAttempts: h.RetryMaxAttempts, Backoff: h.RetryBackoff, MaxBackoff: h.RetryMaxBackoff},
	}
}

// hook converts the entry for webhook.New.
func (w *Webhook) hook() webhook.Hook {
	return webhook.Hook{
		Name: w.Name, URL: w.URL, Events: w.Events, Topics: w.Topics, Secret: w.Secret,
		Payload: w.Payload, Timeout: w.Timeout,
		BatchMaxEvents: w.Batch.MaxEvents, BatchMaxDelay: w.Batch.MaxDelay,
		QueueMaxBytes:    int64(w.Queue.MaxBytes),
		RetryMaxAttempts: w.Retry.MaxAttempts, RetryBackoff: w.Retry.Backoff, RetryMaxBackoff: w.Retry.MaxBackoff,
		CAFile: w.TLS.CAFile, CertFile: w.TLS.CertFile, KeyFile: w.TLS.KeyFile, ServerName: w.TLS.ServerName,
	}
}

// validateWebhooks checks every entry, each problem with its key.
func (f *File) validateWebhooks(c *collector) {
	known := webhook.EventNames()
	for i := range f.Webhooks {
		w := &f.Webhooks[i]
		at := func(key, format string, a ...any) { c.at(fmt.Sprintf("webhooks[%d].%s", i, key), format, a...) }
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			at("url", "required: the http:// or https:// URL events are posted to")
		case err != nil:
			at("url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			at("url", "%q: want an http:// or https:// URL", w.URL)
		case u.Host == "":
			at("url", "%q has no host", w.URL)
		}
		for j, e := range w.Events {
			found := false
			for _, k := range known {
				found = found || k == e
			}
			if !found {
				at(fmt.Sprintf("events[%d]", j), "unknown event %q; known: %s", e, strings.Join(known, ", "))
			}
		}
		for j, t := range w.Topics {
			if !topic.ValidFilter(t) {
				at(fmt.Sprintf("topics[%d]", j), "%q is not a valid topic filter", t)
			}
		}
		if w.Timeout <= 0 {
			at("timeout", "must be positive")
		}
		if w.Batch.MaxEvents < 1 {
			at("batch.max_events", "must be at least 1")
		}
		if w.Batch.MaxDelay < 0 {
			at("batch.max_delay", "must not be negative")
		}
		if w.Queue.MaxBytes < 1024 {
			at("queue.max_bytes", "must be at least 1KiB")
		}
		if w.Retry.MaxAttempts < 1 {
			at("retry.max_attempts", "must be at least 1")
		}
		if w.Retry.Backoff <= 0 {
			at("retry.backoff", "must be positive")
		} else if w.Retry.MaxBackoff < w.Retry.Backoff {
			at("retry.max_backoff", "must be at least retry.backoff (%v)", w.Retry.Backoff)
		}
		if (w.TLS.CertFile == "") != (w.TLS.KeyFile == "") {
			at("tls", "cert_file and key_file go together")
		}
		if (w.TLS.CAFile != "" || w.TLS.CertFile != "") && u != nil && u.Scheme == "http" {
			at("tls", "set for an http:// URL; use https://")
		}
	}
}

// buildWebhooks reads the TLS files of every entry and makes the hooks.
func (f *File) buildWebhooks(c *collector) []webhook.Hook {
	var hooks []webhook.Hook
	for i := range f.Webhooks {
		h := f.Webhooks[i].hook()
		if _, err := h.TLSConfig(); err != nil {
			c.at(fmt.Sprintf("webhooks[%d].tls", i), "%v", err)
		}
		hooks = append(hooks, h)
	}
	return hooks
}
