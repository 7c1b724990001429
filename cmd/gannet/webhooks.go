package main

import (
	"log/slog"
	"reflect"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/webhook"
)

// webhookSet runs the configured webhooks and, on reload, replaces them
// when their configuration changed: the new engine observes the broker
// before the old one stops, and the old one sends what it holds queued.
type webhookSet struct {
	srv *broker.Server
	log *slog.Logger

	mu     sync.Mutex
	hooks  []webhook.Hook
	eng    *webhook.Engine // nil: no webhooks
	closes sync.WaitGroup  // old engines still sending what they hold
}

// apply runs hooks in place of the running ones, if they differ. An
// invalid configuration keeps the running ones.
func (w *webhookSet) apply(hooks []webhook.Hook) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if reflect.DeepEqual(hooks, w.hooks) {
		return nil
	}
	var eng *webhook.Engine
	if len(hooks) > 0 {
		var err error
		if eng, err = webhook.New(w.srv, webhook.Options{Hooks: hooks, Logger: w.log}); err != nil {
			return err
		}
	}
	old := w.eng
	w.eng, w.hooks = eng, hooks
	if old != nil {
		// Close tries once more to send what is queued, for up to a
		// hook's timeout: not on the caller's time.
		w.closes.Add(1)
		go func() { defer w.closes.Done(); old.Close() }()
	}
	return nil
}

// Close stops the webhooks, after the broker has closed: the last events go out.
func (w *webhookSet) Close() error {
	w.mu.Lock()
	eng := w.eng
	w.eng = nil
	w.mu.Unlock()
	if eng != nil {
		eng.Close()
	}
	w.closes.Wait()
	return nil
}

// Collector reports the metrics of whichever webhooks run at the time.
// It describes nothing up front (an unchecked collector): the set of
// webhooks may change.
func (w *webhookSet) Collector() prometheus.Collector { return webhookMetrics{w} }

type webhookMetrics struct{ w *webhookSet }

func (webhookMetrics) Describe(chan<- *prometheus.Desc) {}

func (m webhookMetrics) Collect(ch chan<- prometheus.Metric) {
	m.w.mu.Lock()
	eng := m.w.eng
	m.w.mu.Unlock()
	if eng != nil {
		eng.Collector().Collect(ch)
	}
}
