package admin

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gannet-mqtt/gannet/broker"
)

// newRegistry returns a registry with the broker's collector, the store
// timings of MeteredStore, and the Go runtime and process collectors.
func newRegistry(srv *broker.Server) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		newBrokerCollector(srv),
		newOpsCollector(srv),
		newJWTCollector(srv),
		storeSeconds,
		storeErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admin: register metrics: %w", err)
		}
	}
	return reg, nil
}

func (a *Admin) metricsHandler() http.Handler {
	var g prometheus.Gatherer = a.registry
	if node := a.srv.NodeName(); node != "" {
		g = nodeGatherer{g, node} // cluster.go
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slogErrorLog{a},
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes running at once would each walk every session.
		MaxRequestsInFlight: 4,
	})
}

// slogErrorLog passes promhttp's errors to the admin's logger.
type slogErrorLog struct{ a *Admin }

func (l slogErrorLog) Println(v ...any) { l.a.log.Warn("admin: metrics: " + fmt.Sprint(v...)) }

// brokerCollector reads broker.Stats and the sessions at each scrape, so
// the values are the broker's own counters: nothing is counted twice.
type brokerCollector struct {
	srv *broker.Server

	uptime, connections, maxConnections, accepted       *prometheus.Desc
	refused, received, sent, bytesIn, bytesOut          *prometheus.Desc
	dropped, throttled, slowClosed                      *prometheus.Desc
	sessions, subscriptions, retained, queued, inflight *prometheus.Desc
}

// Metric names; labels are noted beside them.
const (
	metricUptime         = "gannet_uptime_seconds"
	metricConnections    = "gannet_connections"
	metricMaxConnections = "gannet_connections_max"
	metricAccepted       = "gannet_connections_accepted_total"
	metricRefused        = "gannet_connections_refused_total" // reason
	metricReceived       = "gannet_messages_received_total"   // qos
	metricSent           = "gannet_messages_sent_total"       // qos
	metricBytesIn        = "gannet_bytes_received_total"
	metricBytesOut       = "gannet_bytes_sent_total"
	metricDropped        = "gannet_messages_dropped_total" // reason
	metricThrottled      = "gannet_publishes_throttled_total"
	metricSlowClosed     = "gannet_slow_clients_disconnected_total"
	metricSessions       = "gannet_sessions"
	metricSubscriptions  = "gannet_subscriptions"
	metricRetained       = "gannet_retained_messages"
	metricQueued         = "gannet_queued_messages"
	metricInflight       = "gannet_inflight_messages"
)

func newBrokerCollector(srv *broker.Server) *brokerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &brokerCollector{
		srv:            srv,
		uptime:         d(metricUptime, "Seconds since the broker started."),
		connections:    d(metricConnections, "Clients connected now."),
		maxConnections: d(metricMaxConnections, "Most clients connected at once since the broker started."),
		accepted:       d(metricAccepted, "Connections accepted since the broker started."),
		refused:        d(metricRefused, "Connections refused, by reason: rate (too many from one address), memory (memory above the ceiling).", "reason"),
		received:       d(metricReceived, "PUBLISH packets received from clients, by QoS.", "qos"),
		sent:           d(metricSent, "PUBLISH packets sent to clients, by QoS.", "qos"),
		bytesIn:        d(metricBytesIn, "Bytes read from clients."),
		bytesOut:       d(metricBytesOut, "Bytes written to clients."),
		dropped:        d(metricDropped, "Messages dropped, by reason: queue_full (a session queue was full, QoS 1/2), slow_consumer (a client was not reading, QoS 0), too_large (over a client's Maximum Packet Size).", "reason"),
		throttled:      d(metricThrottled, "Publishes held back by the publish rate limit."),
		slowClosed:     d(metricSlowClosed, "Clients disconnected for not reading."),
		sessions:       d(metricSessions, "Sessions held, connected or not."),
		subscriptions:  d(metricSubscriptions, "Subscriptions in the subscription trie."),
		retained:       d(metricRetained, "Retained messages held."),
		queued:         d(metricQueued, "QoS 1/2 messages waiting in session queues, summed over sessions."),
		inflight:       d(metricInflight, "QoS 1/2 messages sent and not yet acknowledged, summed over sessions."),
	}
}

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.uptime, c.connections, c.maxConnections, c.accepted, c.refused,
		c.received, c.sent, c.bytesIn, c.bytesOut, c.dropped, c.throttled,
		c.slowClosed, c.sessions, c.subscriptions, c.retained, c.queued, c.inflight,
	} {
		ch <- d
	}
}

var qosLabels = [3]string{"0", "1", "2"}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.uptime, st.Uptime.Seconds())
	gauge(c.connections, float64(st.Connections))
	gauge(c.maxConnections, float64(st.MaxConnections))
	counter(c.accepted, st.Accepted)
	counter(c.refused, st.RefusedRate, "rate")
	counter(c.refused, st.RefusedMemory, "memory")
	counter(c.refused, st.RefusedOwner, "session_owner")
	for q, l := range qosLabels {
		counter(c.received, st.ReceivedByQoS[q], l)
		counter(c.sent, st.SentByQoS[q], l)
	}
	counter(c.bytesIn, st.BytesReceived)
	counter(c.bytesOut, st.BytesSent)
	counter(c.dropped, st.DroppedQueue, "queue_full")
	counter(c.dropped, st.DroppedSlow, "slow_consumer")
	counter(c.dropped, st.DroppedTooLarge, "too_large")
	counter(c.dropped, st.DroppedRetained, "retained_quota")
	counter(c.throttled, st.Throttled)
	counter(c.slowClosed, st.SlowClosed)
	gauge(c.sessions, float64(st.Sessions))
	gauge(c.subscriptions, float64(st.Subscriptions))
	gauge(c.retained, float64(st.Retained))

	// One pass over the sessions per scrape: fine at scrape intervals,
	// though it takes each session's lock for a moment.
	var queued, inflight int
	for _, ci := range c.srv.Clients() {
		queued += ci.Queued
		inflight += ci.Inflight
	}
	gauge(c.queued, float64(queued))
	gauge(c.inflight, float64(inflight))
}
