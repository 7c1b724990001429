package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/topic"
)

// Options configure an Engine.
type Options struct {
	// Hooks are the endpoints events are posted to.
	Hooks []Hook
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Hook is one endpoint and what it is sent. Start from DefaultHook.
type Hook struct {
	// Name labels the hook in logs and metrics; default the URL without
	// its query and credentials.
	Name string
	// URL receives POST requests; http or https.
	URL string
	// Events are the event names posted (broker.EventKind.String:
	// client.connected, message.published, ...); empty: all of them.
	Events []string
	// Topics are topic filters: message events (message.published,
	// .delivered, .dropped) are posted only for topics they match, and
	// subscribe events only for filters equal to or matched by them.
	// Empty: all topics.
	Topics []string
	// Secret, when set, signs each request body with HMAC-SHA256: the
	// header X-Gannet-Signature carries "sha256=" and the hex digest.
	Secret string
	// Payload includes message payloads (base64) in message events.
	Payload bool
	// Timeout bounds one request, connection included.
	Timeout time.Duration
	// BatchMaxEvents is the most events in one request; BatchMaxDelay is
	// how long the first queued event waits for others to join it.
	BatchMaxEvents int
	BatchMaxDelay  time.Duration
	// QueueMaxBytes bounds the events waiting to be sent (and in flight),
	// as estimated in memory; events beyond it are dropped and counted.
	QueueMaxBytes int64
	// RetryMaxAttempts is how many times one batch is tried before its
	// events are counted as failed; retries wait RetryBackoff, doubling
	// up to RetryMaxBackoff.
	RetryMaxAttempts int
	RetryBackoff     time.Duration
	RetryMaxBackoff  time.Duration
	// TLS of an https URL: the CAs the server certificate must chain to
	// (empty: the system's), a client certificate and key, the server
	// name to verify (default the URL's host).
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// DefaultHook returns a hook with the default settings and no URL.
func DefaultHook() Hook {
	return Hook{
		Payload:          true,
		Timeout:          5 * time.Second,
		BatchMaxEvents:   100,
		BatchMaxDelay:    100 * time.Millisecond,
		QueueMaxBytes:    16 << 20,
		RetryMaxAttempts: 5,
		RetryBackoff:     500 * time.Millisecond,
		RetryMaxBackoff:  30 * time.Second,
	}
}

// EventNames lists every event a hook can be sent.
func EventNames() []string {
	var names []string
	for k := broker.EventConnected; k <= broker.EventSessionEnded; k++ {
		names = append(names, k.String())
	}
	return names
}

// Validate reports every invalid setting of h at once (files are read by
// TLSConfig).
func (h *Hook) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "":
		bad("url: required")
	case err != nil:
		bad("url: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("url %q: want an http:// or https:// URL", h.URL)
	case u.Host == "":
		bad("url %q: no host", h.URL)
	}
	for _, e := range h.Events {
		if _, ok := eventKind(e); !ok {
			bad("events: unknown event %q (known: %s)", e, strings.Join(EventNames(), ", "))
		}
	}
	for _, f := range h.Topics {
		if !topic.ValidFilter(f) {
			bad("topics: %q is not a valid topic filter", f)
		}
	}
	if h.Timeout <= 0 {
		bad("timeout %v must be positive", h.Timeout)
	}
	if h.BatchMaxEvents < 1 {
		bad("batch.max_events %d must be at least 1", h.BatchMaxEvents)
	}
	if h.BatchMaxDelay < 0 {
		bad("batch.max_delay %v must not be negative", h.BatchMaxDelay)
	}
	if h.QueueMaxBytes < 1024 {
		bad("queue.max_bytes %d must be at least 1024", h.QueueMaxBytes)
	}
	if h.RetryMaxAttempts < 1 {
		bad("retry.max_attempts %d must be at least 1", h.RetryMaxAttempts)
	}
	if h.RetryBackoff <= 0 || h.RetryMaxBackoff < h.RetryBackoff {
		bad("retry.backoff %v must be positive and at most retry.max_backoff %v", h.RetryBackoff, h.RetryMaxBackoff)
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	if (h.CAFile != "" || h.CertFile != "") && u != nil && u.Scheme == "http" {
		bad("tls: set for an http:// URL; use https://")
	}
	return errors.Join(errs...)
}

// eventKind accepts an event name; packet events are for traces only.
func eventKind(name string) (broker.EventKind, bool) {
	k, ok := broker.ParseEventKind(name)
	if !ok || k > broker.EventSessionEnded {
		return 0, false
	}
	return k, true
}

// TLSConfig reads the hook's CA bundle and client certificate; nil when
// none is set.
func (h *Hook) TLSConfig() (*tls.Config, error) {
	if h.CAFile == "" && h.CertFile == "" && h.ServerName == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: h.ServerName}
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", h.CAFile)
		}
		c.RootCAs = pool
	}
	if h.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// displayName is the hook's name, or its URL without query and user.
func (h *Hook) displayName() string {
	if h.Name != "" {
		return h.Name
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return h.URL
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
