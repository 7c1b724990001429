package config

import (
	"testing"
	"time"
)

// Delayed publish, rewrite rules and per-topic metric filters are checked
// at their keys, each problem reported.
func TestOpsFeatureErrors(t *testing.T) {
	got := errorLines(t, "g.yaml", `
mqtt:
  delayed_publish:
    max_delay: 1500ms
  rewrite:
    - action: everything
      filter: "a/#/b"
      regex: "(["
      replace: "x"
    - action: publish
      filter: "a/#"
      replace: "x"
metrics:
  topics: ["a/#/b", "ok/#"]
  max_topics: 1
`)
	sameLines(t, got, []string{
		`g.yaml:4: mqtt.delayed_publish.max_delay: 1.5s must be whole seconds, at least 1s`,
		`g.yaml:6: mqtt.rewrite[0].action: "everything" is not publish, subscribe or all`,
		`g.yaml:7: mqtt.rewrite[0].filter: "a/#/b" is not a valid topic filter`,
		"g.yaml:8: mqtt.rewrite[0].regex: \"([\" is not a regular expression (Go RE2 syntax): error parsing regexp: missing closing ]: `[`",
		`g.yaml:10: mqtt.rewrite[1].regex: is missing`,
		`g.yaml:14: metrics.topics: 2 filters, more than metrics.max_topics (1)`,
		`g.yaml:14: metrics.topics[0]: "a/#/b" is not a valid topic filter`,
	})
}

// The new keys take environment overrides like every other key.
func TestOpsFeatureEnv(t *testing.T) {
	f := Default()
	if err := f.ApplyEnv([]string{
		"GANNET_MQTT_DELAYED_PUBLISH_ENABLED=true",
		"GANNET_MQTT_DELAYED_PUBLISH_MAX_DELAY=2h",
		"GANNET_MQTT_DELAYED_PUBLISH_MAX_MESSAGES=7",
		"GANNET_METRICS_TOPICS=sensors/#, a/+/b",
		"GANNET_METRICS_MAX_TOPICS=3",
		"GANNET_LIMITS_MAX_QUEUED_BYTES_TOTAL=1GiB",
	}); err != nil {
		t.Fatal(err)
	}
	o := f.brokerOptions()
	if !o.DelayedPublish || o.MaxDelay != 2*time.Hour || o.MaxDelayed != 7 || o.MaxTopicMetrics != 3 ||
		len(o.TopicMetrics) != 2 || o.TopicMetrics[1] != "a/+/b" || o.MaxQueuedBytesTotal != 1<<30 {
		t.Errorf("options %+v", o)
	}
	if err := f.Validate(); err != nil {
		t.Error(err)
	}
}
