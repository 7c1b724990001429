package broker

import (
	"slices"

	"github.com/gannet-mqtt/gannet/auth"
)

// opt returns the options in force. Reload replaces them as a whole, so a
// caller that reads several fields should keep the pointer it got.
func (s *Server) opt() *Options { return s.cfg.Load() }

// Reload applies new options to the running broker without dropping
// connections: authentication and authorisation, connection, rate,
// subscription, queue, buffer and memory limits, session ownership, topic limits and the
// keep-alive cap, topic rewrite rules, delayed publish settings, the
// memory budget of all queues and the per-topic metric filters (whose
// counters start afresh when the list changes). Other fields (store, logger, capabilities advertised in
// CONNACK) keep their values from New. Rates apply to new connections.
// Invalid options are refused whole and the old ones stay.
func (s *Server) Reload(next Options) error {
	if err := next.Validate(); err != nil {
		return err
	}
	o := *s.opt()
	if j, ok := o.Authenticator.(*auth.JWT); ok && o.Authenticator != next.Authenticator {
		j.Close() // stops its JWKS refresh; checks under way finish with the keys held
	}
	o.Authenticator = next.Authenticator
	o.Authorizer = next.Authorizer
	o.MaxConnections = next.MaxConnections
	o.ConnectionRate, o.ConnectionBurst = next.ConnectionRate, next.ConnectionBurst
	o.PublishRate, o.PublishBurst = next.PublishRate, next.PublishBurst
	o.PublishByteRate, o.PublishRateDisconnect = next.PublishByteRate, next.PublishRateDisconnect
	o.MaxSubscriptions = next.MaxSubscriptions
	o.MaxQueued, o.QueueQoS0 = next.MaxQueued, next.QueueQoS0
	o.MaxQueuedBytes = next.MaxQueuedBytes
	o.WriteBufferLimit, o.WriteBufferHardLimit = next.WriteBufferLimit, next.WriteBufferHardLimit
	o.MemoryLimit = next.MemoryLimit
	o.MaxRetained, o.MaxRetainedBytes = next.MaxRetained, next.MaxRetainedBytes
	o.MaxRetainedPerUser, o.MaxRetainedBytesPerUser = next.MaxRetainedPerUser, next.MaxRetainedBytesPerUser
	o.MaxTopicLength, o.MaxTopicLevels = next.MaxTopicLength, next.MaxTopicLevels
	o.MaxKeepAlive = next.MaxKeepAlive
	o.MaxUserProperties = next.MaxUserProperties
	o.EnhancedAuth = next.EnhancedAuth
	o.LoginLimits = next.LoginLimits
	o.SessionOwnership = next.SessionOwnership
	o.Rewrite = next.Rewrite
	o.DelayedPublish, o.MaxDelay, o.MaxDelayed = next.DelayedPublish, next.MaxDelay, next.MaxDelayed
	o.MaxQueuedBytesTotal = next.MaxQueuedBytesTotal
	if !slices.Equal(o.TopicMetrics, next.TopicMetrics) {
		s.topicMetrics.Store(newTopicMetrics(next.TopicMetrics))
	}
	o.TopicMetrics, o.MaxTopicMetrics = next.TopicMetrics, next.MaxTopicMetrics
	s.cfg.Store(&o)
	s.logins.mu.Lock()
	s.logins.srcFail, s.logins.userFail = nil, nil // new budgets start full
	s.logins.mu.Unlock()
	s.limits.mu.Lock()
	s.limits.perIP = nil // new rates start afresh
	s.limits.mu.Unlock()
	s.log.Info("configuration reloaded")
	return nil
}
