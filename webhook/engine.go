package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request
// body under the hook's secret.
const SignatureHeader = "X-Gannet-Signature"

// Engine posts a broker's events to the configured hooks.
type Engine struct {
	hooks  []*hook
	log    *slog.Logger
	remove func()
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// hook is one endpoint's queue and sender.
type hook struct {
	Hook
	name    string
	kinds   uint32 // bit per broker.EventKind; all set when Events is empty
	client  *http.Client
	log     *slog.Logger
	wake    chan struct{} // capacity 1: something was queued
	stopped <-chan struct{}

	mu    sync.Mutex
	queue []broker.Event
	bytes int64 // queued and in flight (estimated)

	enqueued atomic.Uint64
	sent     atomic.Uint64 // events the endpoint accepted
	failed   atomic.Uint64 // events given up after the last attempt or refused
	dropped  atomic.Uint64 // events that did not fit in the queue
	retries  atomic.Uint64 // requests retried
	requests atomic.Uint64 // requests made, retries included
	lastWarn atomic.Int64  // unix nanoseconds of the last overflow warning
}

// New validates opts, starts one sender per hook and starts observing srv.
// Close stops it.
func New(srv *broker.Server, opts Options) (*Engine, error) {
	e := &Engine{log: opts.Logger, stop: make(chan struct{})}
	if e.log == nil {
		e.log = slog.Default()
	}
	var errs []error
	for i := range opts.Hooks {
		h := opts.Hooks[i]
		if err := h.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("webhook %d (%s): %w", i, h.URL, err))
			continue
		}
		tc, err := h.TLSConfig()
		if err != nil {
			errs = append(errs, fmt.Errorf("webhook %d (%s): %w", i, h.URL, err))
			continue
		}
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     tc,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: h.Timeout,
		}
		hk := &hook{
			Hook:    h,
			name:    h.displayName(),
			client:  &http.Client{Transport: tr, Timeout: h.Timeout},
			wake:    make(chan struct{}, 1),
			stopped: e.stop,
		}
		hk.log = e.log.With("webhook", hk.name)
		if len(h.Events) == 0 {
			hk.kinds = ^uint32(0)
		}
		for _, name := range h.Events {
			k, _ := eventKind(name)
			hk.kinds |= 1 << k
		}
		e.hooks = append(e.hooks, hk)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, h := range e.hooks {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); h.run() }()
	}
	if len(e.hooks) > 0 {
		e.remove = srv.AddObserver(e)
	}
	return e, nil
}

// Close stops observing, tries once more to send what is queued (for at
// most a hook's timeout), and stops the senders.
func (e *Engine) Close() error {
	e.once.Do(func() {
		if e.remove != nil {
			e.remove()
		}
		close(e.stop)
		e.wg.Wait()
		for _, h := range e.hooks {
			h.client.CloseIdleConnections()
		}
	})
	return nil
}

// Observe queues e for every hook that wants it. It never blocks: an
// event that does not fit in a hook's queue is dropped and counted.
func (e *Engine) Observe(ev *broker.Event) {
	for _, h := range e.hooks {
		if h.kinds&(1<<ev.Kind) == 0 || !h.wantsTopic(ev) {
			continue
		}
		h.enqueue(ev)
	}
}

// wantsTopic applies the hook's topic filters to message and subscription
// events.
func (h *hook) wantsTopic(ev *broker.Event) bool {
	if len(h.Topics) == 0 {
		return true
	}
	switch ev.Kind {
	case broker.EventPublished, broker.EventDelivered, broker.EventDropped:
		if ev.Topic == "" {
			return true // a drop without a topic (none so far)
		}
	case broker.EventSubscribed, broker.EventUnsubscribed:
	default:
		return true
	}
	for _, f := range h.Topics {
		if f == ev.Topic || matchFilter(f, ev.Topic) {
			return true
		}
	}
	return false
}

// eventCost estimates what a queued event holds in memory and on the
// wire: the struct, its strings, and its payload in base64.
func (h *hook) eventCost(ev *broker.Event) int64 {
	n := 256 + len(ev.ClientID) + len(ev.Username) + len(ev.Remote) + len(ev.Topic) + len(ev.Reason) + len(ev.Detail)
	if h.Payload {
		n += (len(ev.Payload) + 2) / 3 * 4
	}
	return int64(n)
}

func (h *hook) enqueue(ev *broker.Event) {
	cost := h.eventCost(ev)
	h.mu.Lock()
	if h.bytes+cost > h.QueueMaxBytes {
		h.mu.Unlock()
		h.overflow()
		return
	}
	h.bytes += cost
	h.queue = append(h.queue, *ev)
	if !h.Payload {
		h.queue[len(h.queue)-1].Payload = nil
	}
	h.mu.Unlock()
	h.enqueued.Add(1)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// overflow counts a dropped event and warns at most every 10 seconds.
func (h *hook) overflow() {
	n := h.dropped.Add(1)
	now := time.Now().UnixNano()
	last := h.lastWarn.Load()
	if now-last >= int64(10*time.Second) && h.lastWarn.CompareAndSwap(last, now) {
		h.log.Warn("webhook queue full: dropping events; the endpoint is down or slower than the broker (raise queue.max_bytes, or filter events and topics)",
			"dropped_total", n, "queue_max_bytes", h.QueueMaxBytes)
	}
}

// run sends batches until the engine stops.
func (h *hook) run() {
	for {
		select {
		case <-h.wake:
		case <-h.stopped:
			h.final()
			return
		}
		if h.BatchMaxDelay > 0 && h.queued() < h.BatchMaxEvents {
			t := time.NewTimer(h.BatchMaxDelay)
			select {
			case <-t.C:
			case <-h.stopped:
			}
			t.Stop()
		}
		for {
			batch, cost := h.take()
			if len(batch) == 0 {
				break
			}
			h.deliver(batch, h.RetryMaxAttempts)
			h.release(cost)
			select {
			case <-h.stopped:
				h.final()
				return
			default:
			}
		}
	}
}

// final tries once to send what is still queued, then counts the rest as
// failed.
func (h *hook) final() {
	for {
		batch, cost := h.take()
		if len(batch) == 0 {
			return
		}
		h.deliver(batch, 1)
		h.release(cost)
	}
}

func (h *hook) queued() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue)
}

// take removes up to BatchMaxEvents events from the queue; their bytes stay
// counted until release.
func (h *hook) take() ([]broker.Event, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(len(h.queue), h.BatchMaxEvents)
	if n == 0 {
		return nil, 0
	}
	batch := make([]broker.Event, n)
	copy(batch, h.queue)
	clear(h.queue[:n])
	h.queue = h.queue[n:]
	if len(h.queue) == 0 {
		h.queue = nil // let the backing array go
	}
	var cost int64
	for i := range batch {
		cost += h.eventCost(&batch[i])
	}
	return batch, cost
}

func (h *hook) release(cost int64) {
	h.mu.Lock()
	h.bytes -= cost
	h.mu.Unlock()
}

// deliver posts one batch, trying up to attempts times with backoff.
func (h *hook) deliver(batch []broker.Event, attempts int) {
	body, err := encodeBatch(batch, h.Payload)
	if err != nil {
		h.failed.Add(uint64(len(batch)))
		h.log.Error("webhook: cannot encode events", "error", err)
		return
	}
	backoff := h.RetryBackoff
	for attempt := 1; ; attempt++ {
		retry, err := h.post(body)
		if err == nil {
			h.sent.Add(uint64(len(batch)))
			return
		}
		if !retry || attempt >= attempts {
			h.failed.Add(uint64(len(batch)))
			h.log.Warn("webhook: events not delivered", "events", len(batch), "attempts", attempt, "error", err)
			return
		}
		h.retries.Add(1)
		h.log.Debug("webhook: request failed, retrying", "attempt", attempt, "backoff", backoff, "error", err)
		// ±20% jitter, so that hooks failing together do not retry together.
		wait := backoff + time.Duration((rand.Float64()-0.5)*0.4*float64(backoff))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-h.stopped:
			t.Stop()
			attempts = attempt + 1 // one last try
		}
		backoff = min(2*backoff, h.RetryMaxBackoff)
	}
}

// post makes one request; retry tells whether a failure may pass.
func (h *hook) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gannet-webhook")
	if h.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(h.Secret, body))
	}
	h.requests.Add(1)
	resp, err := h.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return false, fmt.Errorf("endpoint refused the events: %s", resp.Status)
}

// Sign returns the X-Gannet-Signature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature (an X-Gannet-Signature value) is body's
// under secret, in constant time: for receivers written in Go.
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// Payload is the JSON body of every request.
type Payload struct {
	Events []EventJSON `json:"events"`
}

// EventJSON is one event as posted.
type EventJSON struct {
	Event    string    `json:"event"`
	Time     time.Time `json:"time"`
	ClientID string    `json:"client_id,omitempty"`
	Username string    `json:"username,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Protocol int       `json:"protocol,omitempty"`
	Topic    string    `json:"topic,omitempty"`
	Filter   string    `json:"filter,omitempty"`
	QoS      *int      `json:"qos,omitempty"`
	Retain   bool      `json:"retain,omitempty"`
	Payload  []byte    `json:"payload,omitempty"` // base64
	Reason   string    `json:"reason,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// ToJSON converts an event to its posted form.
func ToJSON(ev *broker.Event, payload bool) EventJSON {
	j := EventJSON{
		Event:    ev.Kind.String(),
		Time:     ev.Time.UTC(),
		ClientID: ev.ClientID,
		Username: ev.Username,
		Remote:   ev.Remote,
		Reason:   ev.Reason,
		Detail:   ev.Detail,
	}
	switch ev.Kind {
	case broker.EventConnected, broker.EventDisconnected:
		j.Protocol = int(ev.Protocol)
	case broker.EventSubscribed, broker.EventUnsubscribed:
		j.Filter = ev.Topic
		if ev.Kind == broker.EventSubscribed {
			q := int(ev.QoS)
			j.QoS = &q
		}
	case broker.EventPublished, broker.EventDelivered, broker.EventDropped:
		j.Topic = ev.Topic
		q := int(ev.QoS)
		j.QoS = &q
		j.Retain = ev.Retain
		if payload {
			j.Payload = ev.Payload
			if j.Payload == nil {
				j.Payload = []byte{}
			}
		}
	}
	return j
}

func encodeBatch(batch []broker.Event, payload bool) ([]byte, error) {
	p := Payload{Events: make([]EventJSON, len(batch))}
	for i := range batch {
		p.Events[i] = ToJSON(&batch[i], payload)
	}
	return json.Marshal(p)
}

// Stats are one hook's counters.
type Stats struct {
	Name        string `json:"name"`
	Enqueued    uint64 `json:"enqueued"`
	Sent        uint64 `json:"sent"`
	Failed      uint64 `json:"failed"`
	Dropped     uint64 `json:"dropped"`
	Retries     uint64 `json:"retries"`
	Requests    uint64 `json:"requests"`
	QueuedBytes int64  `json:"queued_bytes"`
}

// Stats returns the counters of every hook, in configuration order.
func (e *Engine) Stats() []Stats {
	out := make([]Stats, len(e.hooks))
	for i, h := range e.hooks {
		h.mu.Lock()
		b := h.bytes
		h.mu.Unlock()
		out[i] = Stats{
			Name: h.name, Enqueued: h.enqueued.Load(), Sent: h.sent.Load(), Failed: h.failed.Load(),
			Dropped: h.dropped.Load(), Retries: h.retries.Load(), Requests: h.requests.Load(), QueuedBytes: b,
		}
	}
	return out
}
