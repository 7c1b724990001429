package admin

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/topic"
)

// Message tracing: POST /api/v1/traces starts a trace of one client (every
// packet it sends and receives, and what happens to its session and
// messages) or of one topic filter (every message published, delivered or
// dropped on a matching topic), for a bounded time and size, written as
// JSON lines to a file in the trace directory or streamed in the response.
// While no trace runs the broker is not observed at all.

// Bounds of a trace.
const (
	maxActiveTraces      = 8
	defaultTraceDuration = time.Minute
	maxTraceDuration     = time.Hour
	defaultTraceBytes    = 10 << 20
	maxTraceBytes        = 1 << 30
	minTraceBytes        = 1024
	traceBuffer          = 4096 // lines waiting to be written; beyond: lost and counted
	finishedTraces       = 32   // stopped traces kept in the list
	trailerReserve       = 256  // bytes kept for the final line
)

// TraceRequest is the body of POST /api/v1/traces: exactly one of
// ClientID and Topic.
type TraceRequest struct {
	ClientID string `json:"client_id,omitempty"`
	Topic    string `json:"topic,omitempty"` // a topic filter
	// Duration is how long the trace runs (Go duration, "30s"; default 1m,
	// at most 1h).
	Duration string `json:"duration,omitempty"`
	// MaxBytes bounds what the trace writes, final line included
	// (default 10 MiB, at most 1 GiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Output is "file" (default: a file in the trace directory) or
	// "stream" (the response streams the lines until the trace ends).
	Output string `json:"output,omitempty"`
}

// TraceInfo describes a trace.
type TraceInfo struct {
	ID       string    `json:"id"`
	ClientID string    `json:"client_id,omitempty"`
	Topic    string    `json:"topic,omitempty"`
	Output   string    `json:"output"`
	File     string    `json:"file,omitempty"`
	Started  time.Time `json:"started"`
	Ends     time.Time `json:"ends"`
	MaxBytes int64     `json:"max_bytes"`
	Bytes    int64     `json:"bytes"`
	Events   uint64    `json:"events"`
	Lost     uint64    `json:"lost"` // events not written: the writer fell behind
	Active   bool      `json:"active"`
	Stopped  string    `json:"stopped,omitempty"` // why it ended: duration, max_bytes, stopped, disconnected, error
}

// TraceLine is one line of a trace.
type TraceLine struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	ClientID string    `json:"client_id,omitempty"`
	Username string    `json:"username,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Packet   string    `json:"packet,omitempty"`
	Topic    string    `json:"topic,omitempty"`
	QoS      *int      `json:"qos,omitempty"`
	Retain   bool      `json:"retain,omitempty"`
	Payload  []byte    `json:"payload,omitempty"` // base64
	Reason   string    `json:"reason,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// tracer runs the traces of one Admin; it observes the broker only while
// a trace is active.
type tracer struct {
	srv *broker.Server
	dir string

	mu       sync.Mutex
	traces   map[string]*trace
	finished []*trace
	remove   func()

	active  atomic.Pointer[[]*trace] // what Observe reads
	started atomic.Uint64
}

type trace struct {
	info     TraceInfo // fixed fields; the counters below are live
	clientID string
	filter   string

	lines   chan []byte
	stop    chan struct{} // closed to end the trace
	once    sync.Once
	done    chan struct{} // closed when the writer has finished
	bytes   atomic.Int64
	events  atomic.Uint64
	lost    atomic.Uint64
	reason  atomic.Pointer[string]
	stopped atomic.Bool
}

func newTracer(srv *broker.Server, dir string) *tracer {
	return &tracer{srv: srv, dir: dir, traces: make(map[string]*trace)}
}

// end asks the trace to stop for reason (the first reason wins).
func (t *trace) end(reason string) {
	t.once.Do(func() {
		t.reason.Store(&reason)
		close(t.stop)
	})
}

func (t *trace) snapshot() TraceInfo {
	i := t.info
	i.Bytes, i.Events, i.Lost = t.bytes.Load(), t.events.Load(), t.lost.Load()
	i.Active = !t.stopped.Load()
	if r := t.reason.Load(); r != nil && !i.Active {
		i.Stopped = *r
	}
	return i
}

// wants reports whether the trace records e.
func (t *trace) wants(e *broker.Event) bool {
	if t.clientID != "" {
		return e.ClientID == t.clientID
	}
	switch e.Kind {
	case broker.EventPublished, broker.EventDelivered, broker.EventDropped:
		return topic.MatchFilter(t.filter, e.Topic)
	}
	return false
}

// Observe formats the event for every trace that wants it; a trace whose
// writer is behind loses the line and counts it.
func (tr *tracer) Observe(e *broker.Event) {
	ts := tr.active.Load()
	if ts == nil {
		return
	}
	var line []byte
	for _, t := range *ts {
		if !t.wants(e) {
			continue
		}
		if line == nil {
			line = traceLine(e)
		}
		select {
		case t.lines <- line:
		default:
			t.lost.Add(1)
		}
	}
}

// ObservePackets asks for the packets of traced clients.
func (tr *tracer) ObservePackets(clientID string) bool {
	ts := tr.active.Load()
	if ts == nil {
		return false
	}
	for _, t := range *ts {
		if t.clientID == clientID {
			return true
		}
	}
	return false
}

func traceLine(e *broker.Event) []byte {
	l := TraceLine{Time: e.Time.UTC(), Event: e.Kind.String(), ClientID: e.ClientID, Username: e.Username,
		Remote: e.Remote, Packet: e.Packet, Topic: e.Topic, Retain: e.Retain, Reason: e.Reason, Detail: e.Detail}
	switch e.Kind {
	case broker.EventPublished, broker.EventDelivered, broker.EventDropped, broker.EventSubscribed:
		q := int(e.QoS)
		l.QoS = &q
		l.Payload = e.Payload
	case broker.EventPacketIn, broker.EventPacketOut:
		if e.Packet == "PUBLISH" {
			q := int(e.QoS)
			l.QoS = &q
			l.Payload = e.Payload
		}
	}
	b, _ := json.Marshal(l)
	return append(b, '\n')
}

// start registers a trace and begins observing if it is the first.
func (tr *tracer) start(req *TraceRequest, now time.Time) (*trace, int, error) {
	if (req.ClientID == "") == (req.Topic == "") {
		return nil, http.StatusBadRequest, errors.New("give exactly one of client_id and topic")
	}
	if req.Topic != "" && !topic.ValidFilter(req.Topic) {
		return nil, http.StatusBadRequest, fmt.Errorf("topic %q is not a valid topic filter", req.Topic)
	}
	d := defaultTraceDuration
	if req.Duration != "" {
		var err error
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 || d > maxTraceDuration {
			return nil, http.StatusBadRequest, fmt.Errorf("duration %q: want a Go duration between 1s and %v (30s, 5m)", req.Duration, maxTraceDuration)
		}
	}
	max := int64(defaultTraceBytes)
	if req.MaxBytes != 0 {
		if req.MaxBytes < minTraceBytes || req.MaxBytes > maxTraceBytes {
			return nil, http.StatusBadRequest, fmt.Errorf("max_bytes %d: want between %d and %d", req.MaxBytes, minTraceBytes, maxTraceBytes)
		}
		max = req.MaxBytes
	}
	switch req.Output {
	case "":
		req.Output = "file"
	case "file", "stream":
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("output %q: want file or stream", req.Output)
	}
	if req.Output == "file" && tr.dir == "" {
		return nil, http.StatusBadRequest, errors.New("no trace directory is configured (the admin's TraceDir: the store's data directory); use output stream")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	t := &trace{
		clientID: req.ClientID,
		filter:   req.Topic,
		lines:    make(chan []byte, traceBuffer),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	t.info = TraceInfo{
		ID:       now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(rnd[:]),
		ClientID: req.ClientID, Topic: req.Topic, Output: req.Output,
		Started: now, Ends: now.Add(d), MaxBytes: max,
	}
	if req.Output == "file" {
		t.info.File = filepath.Join(tr.dir, t.info.ID+".jsonl")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.traces) >= maxActiveTraces {
		return nil, http.StatusTooManyRequests, fmt.Errorf("%d traces are running already; stop one first", maxActiveTraces)
	}
	tr.traces[t.info.ID] = t
	tr.publishLocked()
	if tr.remove == nil {
		tr.remove = tr.srv.AddObserver(tr)
	}
	tr.started.Add(1)
	return t, 0, nil
}

// publishLocked swaps in the active set Observe reads. tr.mu held.
func (tr *tracer) publishLocked() {
	if len(tr.traces) == 0 {
		tr.active.Store(nil)
		return
	}
	ts := make([]*trace, 0, len(tr.traces))
	for _, t := range tr.traces {
		ts = append(ts, t)
	}
	tr.active.Store(&ts)
}

// finish unregisters a trace whose writer has stopped; the last one stops
// the observing.
func (tr *tracer) finish(t *trace) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.traces, t.info.ID)
	tr.publishLocked()
	tr.finished = append(tr.finished, t)
	if len(tr.finished) > finishedTraces {
		tr.finished = slices.Delete(tr.finished, 0, len(tr.finished)-finishedTraces)
	}
	if len(tr.traces) == 0 && tr.remove != nil {
		tr.remove()
		tr.remove = nil
	}
}

// run writes the trace's lines to w until it ends; flush, if not nil,
// pushes them out after each batch.
func (tr *tracer) run(t *trace, w io.Writer, flush func() error) {
	defer close(t.done)
	defer tr.finish(t)
	defer t.stopped.Store(true)
	timer := time.NewTimer(time.Until(t.info.Ends))
	defer timer.Stop()
	limit := t.info.MaxBytes - trailerReserve
	write := func(b []byte) bool {
		n, err := w.Write(b)
		t.bytes.Add(int64(n))
		if err != nil {
			t.end("error: " + err.Error())
			return false
		}
		return true
	}
	head, _ := json.Marshal(map[string]any{"time": time.Now().UTC(), "event": "trace.started", "trace": t.snapshot()})
	write(append(head, '\n'))
	if flush != nil {
		flush() // a streaming client has its answer at once
	}
	for {
		select {
		case l := <-t.lines:
			if t.bytes.Load()+int64(len(l)) > limit {
				t.lost.Add(1)
				t.end("max_bytes")
				continue
			}
			if !write(l) {
				continue
			}
			t.events.Add(1)
			// Take what else is waiting before flushing.
			for more := true; more; {
				select {
				case l := <-t.lines:
					if t.bytes.Load()+int64(len(l)) > limit {
						t.lost.Add(1)
						t.end("max_bytes")
						more = false
						continue
					}
					if write(l) {
						t.events.Add(1)
					}
				default:
					more = false
				}
			}
			if flush != nil && flush() != nil {
				t.end("disconnected")
			}
		case <-timer.C:
			t.end("duration")
		case <-t.stop:
			reason := *t.reason.Load()
			// Count what is still queued as lost.
			for {
				select {
				case <-t.lines:
					t.lost.Add(1)
					continue
				default:
				}
				break
			}
			tail, _ := json.Marshal(map[string]any{"time": time.Now().UTC(), "event": "trace.stopped", "reason": reason,
				"events": t.events.Load(), "lost": t.lost.Load()})
			if !strings.HasPrefix(reason, "error") && len(tail) < trailerReserve {
				write(append(tail, '\n'))
			}
			if flush != nil {
				flush()
			}
			return
		}
	}
}

// close stops every trace and waits for their writers.
func (tr *tracer) close() {
	tr.mu.Lock()
	ts := make([]*trace, 0, len(tr.traces))
	for _, t := range tr.traces {
		ts = append(ts, t)
	}
	tr.mu.Unlock()
	for _, t := range ts {
		t.end("stopped")
		<-t.done
	}
}

// traceRoutes registers the trace endpoints.
func (a *Admin) traceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/traces", a.listTraces)
	mux.HandleFunc("POST /api/v1/traces", a.startTrace)
	methodNotAllowed(mux, "/api/v1/traces", "GET", "POST")
	mux.HandleFunc("GET /api/v1/traces/{id}", a.getTrace)
	mux.HandleFunc("DELETE /api/v1/traces/{id}", a.stopTrace)
	methodNotAllowed(mux, "/api/v1/traces/{id}", "GET", "DELETE")
	mux.HandleFunc("GET /api/v1/traces/{id}/file", a.traceFile)
	methodNotAllowed(mux, "/api/v1/traces/{id}/file", "GET")
}

func (a *Admin) startTrace(w http.ResponseWriter, r *http.Request) {
	var req TraceRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: want a JSON trace request: "+err.Error())
		return
	}
	t, status, err := a.traces.start(&req, time.Now())
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	if req.Output == "stream" {
		a.streamTrace(w, r, t)
		return
	}
	if err := os.MkdirAll(a.traces.dir, 0o700); err != nil {
		a.abortTrace(t)
		writeError(w, http.StatusInternalServerError, "cannot create the trace directory: "+err.Error())
		return
	}
	f, err := os.OpenFile(t.info.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		a.abortTrace(t)
		writeError(w, http.StatusInternalServerError, "cannot create the trace file: "+err.Error())
		return
	}
	a.log.Info("trace started", "id", t.info.ID, "client", t.clientID, "topic", t.filter, "file", t.info.File, "until", t.info.Ends)
	bw := bufio.NewWriterSize(f, 32<<10)
	go func() {
		a.traces.run(t, bw, bw.Flush)
		bw.Flush()
		if err := f.Close(); err != nil {
			a.log.Warn("trace file not closed cleanly", "file", t.info.File, "error", err)
		}
		a.log.Info("trace ended", "id", t.info.ID, "reason", t.snapshot().Stopped, "events", t.events.Load(), "lost", t.lost.Load())
	}()
	writeJSON(w, http.StatusCreated, t.snapshot())
}

// abortTrace ends a trace that never ran.
func (a *Admin) abortTrace(t *trace) {
	t.end("error")
	t.stopped.Store(true)
	a.traces.finish(t)
	close(t.done)
}

// streamTrace writes the trace as the response, NDJSON, until it ends or
// the client goes away.
func (a *Admin) streamTrace(w http.ResponseWriter, r *http.Request, t *trace) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(t.info.Ends.Add(10 * time.Second)) // beyond the server's WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Gannet-Trace", t.info.ID)
	w.WriteHeader(http.StatusOK)
	a.log.Info("trace started", "id", t.info.ID, "client", t.clientID, "topic", t.filter, "output", "stream", "until", t.info.Ends)
	go func() {
		select {
		case <-r.Context().Done():
			t.end("disconnected")
		case <-t.done:
		}
	}()
	a.traces.run(t, w, rc.Flush)
	a.log.Info("trace ended", "id", t.info.ID, "reason", t.snapshot().Stopped, "events", t.events.Load(), "lost", t.lost.Load())
}

func (a *Admin) lookupTrace(id string) *trace {
	tr := a.traces
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if t := tr.traces[id]; t != nil {
		return t
	}
	for _, t := range tr.finished {
		if t.info.ID == id {
			return t
		}
	}
	return nil
}

func (a *Admin) listTraces(w http.ResponseWriter, _ *http.Request) {
	tr := a.traces
	tr.mu.Lock()
	out := make([]TraceInfo, 0, len(tr.traces)+len(tr.finished))
	for _, t := range tr.finished {
		out = append(out, t.snapshot())
	}
	for _, t := range tr.traces {
		out = append(out, t.snapshot())
	}
	tr.mu.Unlock()
	slices.SortFunc(out, func(x, y TraceInfo) int { return x.Started.Compare(y.Started) })
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) getTrace(w http.ResponseWriter, r *http.Request) {
	t := a.lookupTrace(r.PathValue("id"))
	if t == nil {
		writeError(w, http.StatusNotFound, "no such trace: "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, t.snapshot())
}

// stopTrace ends a trace and answers when its output is complete.
func (a *Admin) stopTrace(w http.ResponseWriter, r *http.Request) {
	t := a.lookupTrace(r.PathValue("id"))
	if t == nil {
		writeError(w, http.StatusNotFound, "no such trace: "+r.PathValue("id"))
		return
	}
	t.end("stopped")
	select {
	case <-t.done:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, t.snapshot())
}

// traceFile serves a file trace's lines (while it runs too).
func (a *Admin) traceFile(w http.ResponseWriter, r *http.Request) {
	t := a.lookupTrace(r.PathValue("id"))
	if t == nil || t.info.File == "" {
		writeError(w, http.StatusNotFound, "no file trace "+r.PathValue("id"))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	http.ServeFile(w, r, t.info.File)
}

// Trace metrics.
var (
	descTracesActive = prometheus.NewDesc("gannet_traces_active", "Message traces running.", nil, nil)
	descTracesTotal  = prometheus.NewDesc("gannet_traces_started_total", "Message traces started.", nil, nil)
)

type traceCollector struct{ tr *tracer }

func (c traceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTracesActive
	ch <- descTracesTotal
}

func (c traceCollector) Collect(ch chan<- prometheus.Metric) {
	c.tr.mu.Lock()
	n := len(c.tr.traces)
	c.tr.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descTracesActive, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descTracesTotal, prometheus.CounterValue, float64(c.tr.started.Load()))
}
