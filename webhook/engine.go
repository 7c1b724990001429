package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/topic"
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
	spare []broker.Event // a sent queue's array, for the next
	bytes int64          // queued and in flight (estimated)

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
		if f == ev.Topic || topic.MatchFilter(f, ev.Topic) {
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
			h.final(nil)
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
			q := h.takeAll()
			if len(q) == 0 {
				break
			}
			if rest := h.send(q); rest != nil {
				h.final(rest)
				return
			}
			h.giveBack(q)
		}
	}
}

// batchCost is what a batch holds of the queue's bytes.
func (h *hook) batchCost(batch []broker.Event) int64 {
	var cost int64
	for i := range batch {
		cost += h.eventCost(&batch[i])
	}
	return cost
}

// send posts q in batches, each tried up to RetryMaxAttempts times. When
// the engine stops it returns what it has not sent, for final.
func (h *hook) send(q []broker.Event) []broker.Event {
	for len(q) > 0 {
		select {
		case <-h.stopped:
			return q
		default:
		}
		n := min(len(q), h.BatchMaxEvents)
		h.deliver(q[:n], h.RetryMaxAttempts)
		h.release(h.batchCost(q[:n]))
		q = q[n:]
	}
	return nil
}

// final tries once to send rest and what is still queued, within one
// timeout in all: after a failure, or once the time is up, the rest is
// counted as failed without trying, so that a dead endpoint does not hold
// up a shutdown.
func (h *hook) final(rest []broker.Event) {
	deadline := time.Now().Add(h.Timeout)
	giveUp := false
	for {
		for len(rest) > 0 {
			n := min(len(rest), h.BatchMaxEvents)
			batch := rest[:n]
			rest = rest[n:]
			if giveUp || !time.Now().Before(deadline) {
				h.failed.Add(uint64(n))
			} else if !h.deliver(batch, 1) {
				giveUp = true
			}
			h.release(h.batchCost(batch))
		}
		if rest = h.takeAll(); len(rest) == 0 {
			return
		}
	}
}

func (h *hook) queued() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue)
}

// takeAll hands the whole queue to the sender, which owns it from then
// on; its bytes stay counted until release. The queue goes on in the
// array of an earlier one, so that a busy hook does not regrow it.
func (h *hook) takeAll() []broker.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.queue
	h.queue, h.spare = h.spare, nil
	return q
}

// giveBack keeps a sent queue's array for reuse, unless it is large.
func (h *hook) giveBack(q []broker.Event) {
	clear(q) // let go of payloads and strings
	if cap(q) > 1<<14 {
		return
	}
	h.mu.Lock()
	if h.spare == nil {
		h.spare = q[:0]
	}
	h.mu.Unlock()
}

func (h *hook) release(cost int64) {
	h.mu.Lock()
	h.bytes -= cost
	h.mu.Unlock()
}

// deliver posts one batch, trying up to attempts times with backoff; it
// reports whether the endpoint accepted it.
func (h *hook) deliver(batch []broker.Event, attempts int) bool {
	body, err := encodeBatch(batch, h.Payload)
	if err != nil {
		h.failed.Add(uint64(len(batch)))
		h.log.Error("webhook: cannot encode events", "error", err)
		return false
	}
	backoff := h.RetryBackoff
	for attempt := 1; ; attempt++ {
		retry, err := h.post(body)
		if err == nil {
			h.sent.Add(uint64(len(batch)))
			return true
		}
		if !retry || attempt >= attempts {
			h.failed.Add(uint64(len(batch)))
			h.log.Warn("webhook: events not delivered", "events", len(batch), "attempts", attempt, "error", err)
			return false
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
	Payload  []byte    `json:"payload,omitzero"` // base64; "" for an empty payload
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

// encodeBatch writes the batch as a Payload. It appends by hand what
// encoding/json would write for []EventJSON (the tests decode it with
// encoding/json), at a fraction of the cost: this runs for every event.
func encodeBatch(batch []broker.Event, payload bool) ([]byte, error) {
	size := 16
	for i := range batch {
		ev := &batch[i]
		size += 200 + len(ev.ClientID) + len(ev.Username) + len(ev.Topic) + len(ev.Detail)
		if payload {
			size += base64.StdEncoding.EncodedLen(len(ev.Payload))
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"events":[`...)
	for i := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &batch[i], payload)
	}
	b = append(b, "]}"...)
	return b, nil
}

// appendEvent appends ev as ToJSON(ev, payload) marshals.
func appendEvent(b []byte, ev *broker.Event, payload bool) []byte {
	str := func(b []byte, key, v string) []byte {
		if v == "" {
			return b
		}
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		return appendString(b, v)
	}
	b = append(b, `{"event":"`...)
	b = append(b, ev.Kind.String()...)
	b = append(b, `","time":"`...)
	b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = str(b, "client_id", ev.ClientID)
	b = str(b, "username", ev.Username)
	b = str(b, "remote", ev.Remote)
	qos := func(b []byte) []byte {
		b = append(b, `,"qos":`...)
		return strconv.AppendUint(b, uint64(ev.QoS), 10)
	}
	switch ev.Kind {
	case broker.EventConnected, broker.EventDisconnected:
		if ev.Protocol != 0 {
			b = append(b, `,"protocol":`...)
			b = strconv.AppendUint(b, uint64(ev.Protocol), 10)
		}
	case broker.EventSubscribed, broker.EventUnsubscribed:
		b = str(b, "filter", ev.Topic)
		if ev.Kind == broker.EventSubscribed {
			b = qos(b)
		}
	case broker.EventPublished, broker.EventDelivered, broker.EventDropped:
		b = str(b, "topic", ev.Topic)
		b = qos(b)
		if ev.Retain {
			b = append(b, `,"retain":true`...)
		}
		if payload {
			b = append(b, `,"payload":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.Payload)
			b = append(b, '"')
		}
	}
	b = str(b, "reason", ev.Reason)
	b = str(b, "detail", ev.Detail)
	return append(b, '}')
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD,
// as with encoding/json.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
