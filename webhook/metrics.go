package webhook

import "github.com/prometheus/client_golang/prometheus"

var (
	descSent = prometheus.NewDesc("gannet_webhook_events_sent_total",
		"Events the webhook endpoint accepted.", []string{"webhook"}, nil)
	descFailed = prometheus.NewDesc("gannet_webhook_events_failed_total",
		"Events given up: refused by the endpoint, or not accepted after the last retry.", []string{"webhook"}, nil)
	descDropped = prometheus.NewDesc("gannet_webhook_events_dropped_total",
		"Events dropped because the webhook's queue was full (queue.max_bytes).", []string{"webhook"}, nil)
	descRetries = prometheus.NewDesc("gannet_webhook_retries_total",
		"Requests retried after a failure.", []string{"webhook"}, nil)
	descRequests = prometheus.NewDesc("gannet_webhook_requests_total",
		"Requests made, retries included.", []string{"webhook"}, nil)
	descQueued = prometheus.NewDesc("gannet_webhook_queued_bytes",
		"Estimated bytes of the events queued or in flight.", []string{"webhook"}, nil)
)

// Collector returns the engine's Prometheus metrics, one series per hook
// labelled with its name: register it with admin.Admin.Registry.
func (e *Engine) Collector() prometheus.Collector { return collector{e} }

type collector struct{ e *Engine }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSent, descFailed, descDropped, descRetries, descRequests, descQueued} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.e.Stats() {
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(s.Sent), s.Name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(s.Failed), s.Name)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped), s.Name)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(s.Retries), s.Name)
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Requests), s.Name)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.QueuedBytes), s.Name)
	}
}
