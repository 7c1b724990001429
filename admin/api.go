package admin

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/packet"
)

// maxPublishBody caps the body of POST /api/v1/publish: a payload of a few
// MiB, base64-encoded, with room for the rest of the JSON.
const maxPublishBody = 16 << 20

// apiRoutes registers the JSON API under /api/v1/. Each path also gets a
// method-less pattern that answers 405 in JSON, and anything else under
// /api/ answers 404 in JSON.
func (a *Admin) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/stats", a.getStats)
	methodNotAllowed(mux, "/api/v1/stats", "GET")

	// ?id= names a client whose identifier cannot be a path segment
	// ("." and ".."; browsers drop them, %2E included, from URLs).
	mux.HandleFunc("GET /api/v1/clients", a.listClients)
	mux.HandleFunc("DELETE /api/v1/clients", a.disconnectClient)
	methodNotAllowed(mux, "/api/v1/clients", "GET", "DELETE")
	mux.HandleFunc("GET /api/v1/clients/{id...}", a.getClient)
	mux.HandleFunc("DELETE /api/v1/clients/{id...}", a.disconnectClient)
	methodNotAllowed(mux, "/api/v1/clients/{id...}", "GET", "DELETE")

	mux.HandleFunc("GET /api/v1/subscriptions", a.listSubscriptions)
	methodNotAllowed(mux, "/api/v1/subscriptions", "GET")

	mux.HandleFunc("GET /api/v1/topics", a.listTopics)
	methodNotAllowed(mux, "/api/v1/topics", "GET")

	mux.HandleFunc("GET /api/v1/retained", a.listRetained)
	mux.HandleFunc("DELETE /api/v1/retained", a.deleteRetained) // ?topic=, for topics a path cannot carry
	methodNotAllowed(mux, "/api/v1/retained", "GET", "DELETE")
	mux.HandleFunc("DELETE /api/v1/retained/{topic...}", a.deleteRetained)
	methodNotAllowed(mux, "/api/v1/retained/{topic...}", "DELETE")

	mux.HandleFunc("POST /api/v1/publish", a.publish)
	methodNotAllowed(mux, "/api/v1/publish", "POST")

	a.bridgeRoutes(mux)
	a.traceRoutes(mux) // trace.go
	a.clusterRoutes(mux)

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	})
}

// methodNotAllowed answers 405 with an Allow header for the methods that
// pattern has no handler for.
func methodNotAllowed(mux *http.ServeMux, pattern string, allowed ...string) {
	if slices.Contains(allowed, "GET") {
		allowed = append(allowed, "HEAD")
	}
	allow := strings.Join(allowed, ", ")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	})
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v) // an error here is the client going away
}

// StatsJSON is the body of GET /api/v1/stats: broker.Stats with stable
// JSON names, and the time the snapshot was taken.
type StatsJSON struct {
	Time                time.Time `json:"time"`
	UptimeSeconds       float64   `json:"uptime_seconds"`
	Connections         int64     `json:"connections"`
	MaxConnections      int64     `json:"max_connections"`
	Accepted            uint64    `json:"accepted"`
	Sessions            int       `json:"sessions"`
	Subscriptions       int       `json:"subscriptions"`
	Retained            int       `json:"retained"`
	Received            uint64    `json:"messages_received"`
	Sent                uint64    `json:"messages_sent"`
	ReceivedByQoS       [3]uint64 `json:"messages_received_by_qos"`
	SentByQoS           [3]uint64 `json:"messages_sent_by_qos"`
	BytesReceived       uint64    `json:"bytes_received"`
	BytesSent           uint64    `json:"bytes_sent"`
	DroppedQueueFull    uint64    `json:"dropped_queue_full"`
	DroppedSlowConsumer uint64    `json:"dropped_slow_consumer"`
	DroppedTooLarge     uint64    `json:"dropped_too_large"`
	RefusedRate         uint64    `json:"refused_rate"`
	RefusedMemory       uint64    `json:"refused_memory"`
	Throttled           uint64    `json:"throttled"`
	SlowClosed          uint64    `json:"slow_closed"`
}

func statsJSON(st broker.Stats, now time.Time) StatsJSON {
	return StatsJSON{
		Time:                now.UTC(),
		UptimeSeconds:       st.Uptime.Seconds(),
		Connections:         st.Connections,
		MaxConnections:      st.MaxConnections,
		Accepted:            st.Accepted,
		Sessions:            st.Sessions,
		Subscriptions:       st.Subscriptions,
		Retained:            st.Retained,
		Received:            st.Received,
		Sent:                st.Sent,
		ReceivedByQoS:       st.ReceivedByQoS,
		SentByQoS:           st.SentByQoS,
		BytesReceived:       st.BytesReceived,
		BytesSent:           st.BytesSent,
		DroppedQueueFull:    st.DroppedQueue,
		DroppedSlowConsumer: st.DroppedSlow,
		DroppedTooLarge:     st.DroppedTooLarge,
		RefusedRate:         st.RefusedRate,
		RefusedMemory:       st.RefusedMemory,
		Throttled:           st.Throttled,
		SlowClosed:          st.SlowClosed,
	}
}

func (a *Admin) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statsJSON(a.srv.Stats(), time.Now()))
}

// ClientList is the body of GET /api/v1/clients. Total counts the matches
// before the limit.
type ClientList struct {
	Clients []broker.ClientInfo `json:"clients"`
	Total   int                 `json:"total"`
}

func (a *Admin) listClients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("id") {
		a.getClient(w, r)
		return
	}
	limit, err := queryLimit(q.Get("limit"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var connected *bool
	if s := q.Get("connected"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("connected: %q is not true or false", s))
			return
		}
		connected = &b
	}
	search := strings.ToLower(q.Get("q"))
	out := ClientList{Clients: []broker.ClientInfo{}}
	for _, c := range a.srv.Clients() {
		if connected != nil && c.Connected != *connected {
			continue
		}
		if search != "" && !containsFold(c.ClientID, search) && !containsFold(c.Username, search) && !containsFold(c.Remote, search) {
			continue
		}
		out.Total++
		if limit == 0 || len(out.Clients) < limit {
			out.Clients = append(out.Clients, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// containsFold reports whether s contains the lower-case substring sub,
// ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// queryLimit parses a limit parameter: empty gives def, 0 means no limit.
func queryLimit(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit: %q is not a non-negative integer", s)
	}
	return n, nil
}

// ClientDetail is the body of GET /api/v1/clients/{id}.
type ClientDetail struct {
	Client        broker.ClientInfo         `json:"client"`
	Subscriptions []broker.SubscriptionInfo `json:"subscriptions"`
}

// clientID is the {id} path segment, or else the id query parameter.
func clientID(r *http.Request) (string, bool) {
	if id := r.PathValue("id"); id != "" {
		return id, true
	}
	q := r.URL.Query()
	return q.Get("id"), q.Has("id")
}

func (a *Admin) getClient(w http.ResponseWriter, r *http.Request) {
	id, _ := clientID(r)
	info, subs, ok := a.srv.Client(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown client %q", id))
		return
	}
	if subs == nil {
		subs = []broker.SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, ClientDetail{Client: info, Subscriptions: subs})
}

func (a *Admin) disconnectClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "id: required, as /api/v1/clients/{id} or ?id=")
		return
	}
	discard := false
	if s := r.URL.Query().Get("discard"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("discard: %q is not true or false", s))
			return
		}
		discard = b
	}
	if !a.srv.Disconnect(id, discard) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown client %q", id))
		return
	}
	a.log.Info("admin: disconnected client", "client", id, "discard", discard, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"client_id": id, "disconnected": true, "discarded": discard})
}

// SubscriptionList is the body of GET /api/v1/subscriptions.
type SubscriptionList struct {
	Subscriptions []broker.SubscriptionInfo `json:"subscriptions"`
	Total         int                       `json:"total"`
}

func (a *Admin) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r.URL.Query().Get("limit"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	subs := a.srv.Subscriptions()
	out := SubscriptionList{Subscriptions: subs, Total: len(subs)}
	if limit > 0 && len(subs) > limit {
		out.Subscriptions = subs[:limit]
	}
	if out.Subscriptions == nil {
		out.Subscriptions = []broker.SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

// TopicInfo is one topic filter in GET /api/v1/topics. Without per-topic
// metrics (metrics.topics) the broker counts no messages per topic, so the
// busiest topics are those with the most subscribers; with them, the
// busiest are the configured filters with the highest message rates (in
// plus out, per second). Retained tells whether the filter, as a topic
// name, holds a retained message.
type TopicInfo struct {
	Filter      string `json:"filter"`
	Subscribers int    `json:"subscribers"`
	MaxQoS      byte   `json:"max_qos"`
	Retained    bool   `json:"retained"`
	// With per-topic metrics: messages per second in and out, and the
	// copies dropped since the broker started.
	RateIn  float64 `json:"messages_in_per_second,omitempty"`
	RateOut float64 `json:"messages_out_per_second,omitempty"`
	Dropped uint64  `json:"dropped,omitempty"`
}

// TopicList is the body of GET /api/v1/topics.
type TopicList struct {
	Topics []TopicInfo `json:"topics"`
	Total  int         `json:"total"` // distinct filters
	// RankedBy says what the order is: "message_rate" with per-topic
	// metrics configured, else "subscribers".
	RankedBy string `json:"ranked_by"`
}

func (a *Admin) listTopics(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r.URL.Query().Get("limit"), 10)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.srv.TopicStats() != nil {
		a.topicsByRate(w, limit)
		return
	}
	byFilter := make(map[string]*TopicInfo)
	for _, s := range a.srv.Subscriptions() {
		t := byFilter[s.Filter]
		if t == nil {
			t = &TopicInfo{Filter: s.Filter}
			byFilter[s.Filter] = t
		}
		t.Subscribers++
		t.MaxQoS = max(t.MaxQoS, s.QoS)
	}
	topics := make([]TopicInfo, 0, len(byFilter))
	for _, t := range byFilter {
		topics = append(topics, *t)
	}
	slices.SortFunc(topics, func(x, y TopicInfo) int {
		return cmp.Or(cmp.Compare(y.Subscribers, x.Subscribers), strings.Compare(x.Filter, y.Filter))
	})
	out := TopicList{Topics: topics, Total: len(topics), RankedBy: "subscribers"}
	if limit > 0 && len(topics) > limit {
		out.Topics = topics[:limit]
	}
	for i := range out.Topics {
		t := &out.Topics[i]
		if packet.ValidTopicName(t.Filter) == nil {
			if m, err := a.srv.Retained(t.Filter); err == nil && len(m) > 0 {
				t.Retained = true
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// RetainedMessage is one retained message in GET /api/v1/retained. Payload
// is there when the payload is valid UTF-8; PayloadBase64 always is.
type RetainedMessage struct {
	Topic         string    `json:"topic"`
	Payload       *string   `json:"payload,omitempty"`
	PayloadBase64 string    `json:"payload_base64"`
	QoS           byte      `json:"qos"`
	Created       time.Time `json:"created"`
}

// RetainedList is the body of GET /api/v1/retained.
type RetainedList struct {
	Retained []RetainedMessage `json:"retained"`
	Total    int               `json:"total"`
}

func (a *Admin) listRetained(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("filter")
	if filter == "" {
		filter = "#"
	}
	limit, err := queryLimit(q.Get("limit"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	msgs, err := a.srv.Retained(filter)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("filter %q: %v", filter, err))
		return
	}
	out := RetainedList{Retained: []RetainedMessage{}, Total: len(msgs)}
	if limit > 0 && len(msgs) > limit {
		msgs = msgs[:limit]
	}
	for _, m := range msgs {
		rm := RetainedMessage{
			Topic:         m.Topic,
			PayloadBase64: base64.StdEncoding.EncodeToString(m.Payload),
			QoS:           m.QoS,
			Created:       m.Created.UTC(),
		}
		if utf8.Valid(m.Payload) {
			s := string(m.Payload)
			rm.Payload = &s
		}
		out.Retained = append(out.Retained, rm)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) deleteRetained(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if topic == "" {
		topic = r.URL.Query().Get("topic")
	}
	if topic == "" {
		writeError(w, http.StatusBadRequest, "topic: required, as /api/v1/retained/{topic} or ?topic=")
		return
	}
	if err := packet.ValidTopicName(topic); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("topic %q: %v", topic, err))
		return
	}
	if !a.srv.DeleteRetained(topic) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no retained message on topic %q", topic))
		return
	}
	a.log.Info("admin: deleted retained message", "topic", topic, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "deleted": true})
}

// PublishRequest is the body of POST /api/v1/publish. Payload is text;
// PayloadBase64 carries binary payloads. At most one of them is given.
type PublishRequest struct {
	Topic         string  `json:"topic"`
	Payload       *string `json:"payload"`
	PayloadBase64 *string `json:"payload_base64"`
	QoS           int     `json:"qos"`
	Retain        bool    `json:"retain"`
}

func (a *Admin) publish(w http.ResponseWriter, r *http.Request) {
	// A JSON content type makes a cross-origin form post impossible
	// without a CORS preflight, which this server never grants.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: send application/json", ct))
			return
		}
	} else {
		writeError(w, http.StatusUnsupportedMediaType, "missing content type: send application/json")
		return
	}
	var req PublishRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooLarge.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "body: more than one JSON value")
		return
	}
	payload, err := req.payload()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if status, msg := a.checkPublish(req.Topic, payload, byte(req.QoS)); status != 0 {
		a.log.Warn("admin: publish refused", "topic", req.Topic, "bytes", len(payload), "error", msg, "remote", r.RemoteAddr)
		writeError(w, status, msg)
		return
	}
	if err := a.srv.Publish(req.Topic, payload, byte(req.QoS), req.Retain); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.log.Info("admin: published", "topic", req.Topic, "bytes", len(payload), "qos", req.QoS, "retain", req.Retain, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"topic": req.Topic, "bytes": len(payload), "qos": req.QoS, "retain": req.Retain})
}

// checkPublish holds a message from the API to what an MQTT client's
// PUBLISH is held to, except the ACL: the admin token is a superuser, which
// may write any topic. The broker's own $SYS topics stay the broker's, and
// the size limits stay, so that no subscriber gets a message larger than
// the broker accepts from clients (a 3.1.1 subscriber has no way to say
// what it can take). It returns 0 or the status to refuse with.
func (a *Admin) checkPublish(topic string, payload []byte, qos byte) (int, string) {
	lim := a.srv.PublishLimits()
	if strings.HasPrefix(topic, "$SYS") {
		return http.StatusForbidden, fmt.Sprintf("topic %q: $SYS topics are the broker's own", topic)
	}
	if lim.MaxTopicLength > 0 && len(topic) > lim.MaxTopicLength {
		return http.StatusBadRequest, fmt.Sprintf("topic of %d bytes is longer than limits.max_topic_length (%d)", len(topic), lim.MaxTopicLength)
	}
	if n := strings.Count(topic, "/") + 1; lim.MaxTopicLevels > 0 && n > lim.MaxTopicLevels {
		return http.StatusBadRequest, fmt.Sprintf("topic of %d levels is deeper than limits.max_topic_levels (%d)", n, lim.MaxTopicLevels)
	}
	p := packet.Publish{Topic: topic, Payload: payload, QoS: qos}
	if size := p.Size(packet.V5); size > lim.MaxPacketSize {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("a PUBLISH of %d bytes would be larger than limits.max_packet_size (%d)", size, lim.MaxPacketSize)
	}
	return 0, ""
}

// payload checks the request and returns the payload bytes.
func (req *PublishRequest) payload() ([]byte, error) {
	if req.Topic == "" {
		return nil, errors.New("topic: required")
	}
	if err := packet.ValidTopicName(req.Topic); err != nil {
		return nil, fmt.Errorf("topic %q: %w", req.Topic, err)
	}
	if req.QoS < 0 || req.QoS > 2 {
		return nil, fmt.Errorf("qos: %d is not 0, 1 or 2", req.QoS)
	}
	switch {
	case req.Payload != nil && req.PayloadBase64 != nil:
		return nil, errors.New("payload and payload_base64: give one, not both")
	case req.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.PayloadBase64)
		if err != nil {
			return nil, fmt.Errorf("payload_base64: %w", err)
		}
		return b, nil
	case req.Payload != nil:
		return []byte(*req.Payload), nil
	}
	return []byte{}, nil
}
