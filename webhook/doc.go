// Package webhook posts the broker's events (clients connecting and
// disconnecting, subscriptions, messages published, delivered and dropped,
// sessions created and ended) as JSON to HTTP endpoints.
//
// An Engine observes a broker.Server (broker.AddObserver). Each configured
// Hook has its own bounded queue, in bytes, and one sender goroutine that
// posts batches, signs them with HMAC-SHA256 when a secret is set, and
// retries failures with exponential backoff. Observing never blocks the
// broker: an event that does not fit in the queue is dropped and counted.
//
// See docs/webhooks.md for the payload format and the configuration.
package webhook
