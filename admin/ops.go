package admin

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/broker"
)

// The admin side of delayed publish, per-topic metrics and the queue
// memory budget: /api/v1/delayed, /api/v1/metrics/topics, their Prometheus
// series, and the busiest topics by message rate.

func (a *Admin) opsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/delayed", a.listDelayed)
	methodNotAllowed(mux, "/api/v1/delayed", "GET")
	mux.HandleFunc("DELETE /api/v1/delayed/{id}", a.cancelDelayed)
	methodNotAllowed(mux, "/api/v1/delayed/{id}", "DELETE")

	mux.HandleFunc("GET /api/v1/metrics/topics", a.topicMetrics)
	methodNotAllowed(mux, "/api/v1/metrics/topics", "GET")
}

// DelayedList is the body of GET /api/v1/delayed: the held delayed
// messages, earliest first. Total counts them before the limit.
type DelayedList struct {
	Delayed []broker.DelayedMessage `json:"delayed"`
	Total   int                     `json:"total"`
}

func (a *Admin) listDelayed(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r.URL.Query().Get("limit"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list := a.srv.DelayedMessages()
	out := DelayedList{Delayed: list, Total: len(list)}
	if limit > 0 && len(list) > limit {
		out.Delayed = list[:limit]
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) cancelDelayed(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("delayed message id %q is not a number", r.PathValue("id")))
		return
	}
	if !a.srv.CancelDelayed(id) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no delayed message %d is held (published already, cancelled, or never was)", id))
		return
	}
	a.log.Info("admin: delayed message cancelled", "id", id, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// TopicMetric is one filter in GET /api/v1/metrics/topics: its counters
// since the broker started (or since the filter list last changed) and its
// message rates over the last interval measured.
type TopicMetric struct {
	Filter           string    `json:"filter"`
	MessagesIn       uint64    `json:"messages_in"`
	BytesIn          uint64    `json:"bytes_in"`
	MessagesOut      uint64    `json:"messages_out"`
	BytesOut         uint64    `json:"bytes_out"`
	Dropped          uint64    `json:"dropped"`
	MessagesInByQoS  [3]uint64 `json:"messages_in_by_qos"`
	MessagesOutByQoS [3]uint64 `json:"messages_out_by_qos"`
	DroppedByQoS     [3]uint64 `json:"dropped_by_qos"`
	RateIn           float64   `json:"messages_in_per_second"`
	RateOut          float64   `json:"messages_out_per_second"`
}

// TopicMetricList is the body of GET /api/v1/metrics/topics, in the
// configured order; empty when metrics.topics is.
type TopicMetricList struct {
	Topics []TopicMetric `json:"topics"`
}

func (a *Admin) topicMetrics(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, TopicMetricList{Topics: a.rates.sample(a.srv)})
}

// topicsByRate answers GET /api/v1/topics with the metric filters, busiest
// (messages in plus out per second) first.
func (a *Admin) topicsByRate(w http.ResponseWriter, limit int) {
	ms := a.rates.sample(a.srv)
	subs := make(map[string]*TopicInfo)
	for _, s := range a.srv.Subscriptions() {
		t := subs[s.Filter]
		if t == nil {
			t = &TopicInfo{}
			subs[s.Filter] = t
		}
		t.Subscribers++
		t.MaxQoS = max(t.MaxQoS, s.QoS)
	}
	topics := make([]TopicInfo, 0, len(ms))
	for _, m := range ms {
		t := TopicInfo{Filter: m.Filter, RateIn: m.RateIn, RateOut: m.RateOut, Dropped: m.Dropped}
		if s := subs[m.Filter]; s != nil {
			t.Subscribers, t.MaxQoS = s.Subscribers, s.MaxQoS
		}
		topics = append(topics, t)
	}
	slices.SortStableFunc(topics, func(x, y TopicInfo) int {
		return cmp.Or(cmp.Compare(y.RateIn+y.RateOut, x.RateIn+x.RateOut), strings.Compare(x.Filter, y.Filter))
	})
	out := TopicList{Topics: topics, Total: len(topics), RankedBy: "message_rate"}
	if limit > 0 && len(topics) > limit {
		out.Topics = topics[:limit]
	}
	writeJSON(w, http.StatusOK, out)
}

// topicRates turns the per-topic counters into rates: each sample at least
// minRateInterval after the previous one measures the rates since then;
// one sooner reuses them. The first measures since the broker started.
type topicRates struct {
	mu    sync.Mutex
	at    time.Time
	last  map[string][2]uint64 // filter -> messages in, out at `at`
	rates map[string][2]float64
}

const minRateInterval = time.Second

func (r *topicRates) sample(srv *broker.Server) []TopicMetric {
	ts := srv.TopicStats()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || now.Sub(r.at) >= minRateInterval {
		since, prev := r.at, r.last
		if prev == nil {
			since = now.Add(-srv.Stats().Uptime)
		}
		dt := now.Sub(since).Seconds()
		r.rates = make(map[string][2]float64, len(ts))
		r.last = make(map[string][2]uint64, len(ts))
		for _, t := range ts {
			p, ok := prev[t.Filter]
			if !ok || p[0] > t.MessagesIn || p[1] > t.MessagesOut { // new filter, or counters started afresh
				p = [2]uint64{}
			}
			if dt > 0 {
				r.rates[t.Filter] = [2]float64{float64(t.MessagesIn-p[0]) / dt, float64(t.MessagesOut-p[1]) / dt}
			}
			r.last[t.Filter] = [2]uint64{t.MessagesIn, t.MessagesOut}
		}
		r.at = now
	}
	out := make([]TopicMetric, len(ts))
	for i, t := range ts {
		rate := r.rates[t.Filter]
		out[i] = TopicMetric{
			Filter: t.Filter, MessagesIn: t.MessagesIn, BytesIn: t.BytesIn, MessagesOut: t.MessagesOut, BytesOut: t.BytesOut,
			Dropped: t.Dropped, MessagesInByQoS: t.MessagesInByQoS, MessagesOutByQoS: t.MessagesOutByQoS, DroppedByQoS: t.DroppedByQoS,
			RateIn: rate[0], RateOut: rate[1],
		}
	}
	return out
}

// opsCollector exposes the per-topic counters (label "filter", the
// configured topic filter), the delayed messages and the queue memory
// budget.
type opsCollector struct {
	srv                                            *broker.Server
	topicIn, topicBytesIn, topicOut, topicBytesOut *prometheus.Desc
	topicDropped                                   *prometheus.Desc
	delayedHeld, delayedReleased, delayedRefused   *prometheus.Desc
	queuedBytes, budgetDropped                     *prometheus.Desc
}

// Metric names of opsCollector; labels beside them.
const (
	metricTopicIn         = "gannet_topic_messages_received_total" // filter, qos
	metricTopicBytesIn    = "gannet_topic_bytes_received_total"    // filter
	metricTopicOut        = "gannet_topic_messages_sent_total"     // filter, qos
	metricTopicBytesOut   = "gannet_topic_bytes_sent_total"        // filter
	metricTopicDropped    = "gannet_topic_messages_dropped_total"  // filter, qos
	metricDelayedHeld     = "gannet_delayed_messages"
	metricDelayedReleased = "gannet_delayed_messages_published_total"
	metricDelayedRefused  = "gannet_delayed_messages_refused_total"
	metricQueuedBytes     = "gannet_queued_bytes"
	metricBudgetDropped   = "gannet_queue_budget_dropped_total"
)

func newOpsCollector(srv *broker.Server) *opsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &opsCollector{
		srv:             srv,
		topicIn:         d(metricTopicIn, "Messages routed to topics matching a configured filter (metrics.topics), by the publisher's QoS.", "filter", "qos"),
		topicBytesIn:    d(metricTopicBytesIn, "Payload bytes of the messages routed to topics matching a configured filter.", "filter"),
		topicOut:        d(metricTopicOut, "Copies sent to subscribers of messages on topics matching a configured filter, by QoS of the copy.", "filter", "qos"),
		topicBytesOut:   d(metricTopicBytesOut, "Payload bytes of the copies sent, per configured filter.", "filter"),
		topicDropped:    d(metricTopicDropped, "Copies dropped (queue full, slow client, too large, over a quota or the memory budget), per configured filter, by QoS.", "filter", "qos"),
		delayedHeld:     d(metricDelayedHeld, "Delayed messages ($delayed/{seconds}/{topic}) held now."),
		delayedReleased: d(metricDelayedReleased, "Delayed messages published when due."),
		delayedRefused:  d(metricDelayedRefused, "Delayed PUBLISH packets refused: malformed, over the maximum delay, or no room."),
		queuedBytes:     d(metricQueuedBytes, "Bytes of the QoS 1/2 messages queued in memory, all sessions together (limits.max_queued_bytes_total)."),
		budgetDropped:   d(metricBudgetDropped, "QoS 1/2 deliveries dropped over limits.max_queued_bytes_total (also counted as queue_full)."),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.topicIn, c.topicBytesIn, c.topicOut, c.topicBytesOut, c.topicDropped,
		c.delayedHeld, c.delayedReleased, c.delayedRefused, c.queuedBytes, c.budgetDropped} {
		ch <- d
	}
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, t := range c.srv.TopicStats() {
		for q, l := range qosLabels {
			counter(c.topicIn, t.MessagesInByQoS[q], t.Filter, l)
			counter(c.topicOut, t.MessagesOutByQoS[q], t.Filter, l)
			counter(c.topicDropped, t.DroppedByQoS[q], t.Filter, l)
		}
		counter(c.topicBytesIn, t.BytesIn, t.Filter)
		counter(c.topicBytesOut, t.BytesOut, t.Filter)
	}
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(c.delayedHeld, prometheus.GaugeValue, float64(st.DelayedHeld))
	counter(c.delayedReleased, st.DelayedReleased)
	counter(c.delayedRefused, st.DelayedRefused)
	ch <- prometheus.MustNewConstMetric(c.queuedBytes, prometheus.GaugeValue, float64(st.QueuedBytes))
	counter(c.budgetDropped, st.DroppedBudget)
}
