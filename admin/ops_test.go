package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
)

// GET /api/v1/delayed lists the held delayed messages, earliest first;
// DELETE /api/v1/delayed/{id} cancels one (204), 404 once gone, 400 for an
// id that is not a number.
func TestDelayedAPI(t *testing.T) {
	t.Parallel()
	b := runBroker(t, func(o *broker.Options) { o.DelayedPublish = true })
	s := runAdmin(t, b.Server, admin.Options{})
	c := connect(t, b.Addr, "delayer")
	c.publish("$delayed/600/later/b", "bb", 1, false)
	c.publish("$delayed/300/later/a", "a", 2, true)
	var list admin.DelayedList
	s.request("GET", "/api/v1/delayed", nil).JSON(t, &list)
	if list.Total != 2 || len(list.Delayed) != 2 || list.Delayed[0].Topic != "later/a" || list.Delayed[1].Topic != "later/b" ||
		list.Delayed[0].ClientID != "delayer" || !list.Delayed[0].Retain || list.Delayed[0].QoS != 2 || list.Delayed[1].Size != 2 {
		t.Fatalf("list %+v", list)
	}
	if d := time.Until(list.Delayed[0].Due); d < 290*time.Second || d > 301*time.Second {
		t.Errorf("due in %v, want about 300s", d)
	}
	path := fmt.Sprintf("/api/v1/delayed/%d", list.Delayed[0].ID)
	expect(t, s.request("DELETE", path, nil), 204, "cancel")
	expect(t, s.request("DELETE", path, nil), 404, "cancel again")
	expect(t, s.request("DELETE", "/api/v1/delayed/abc", nil), 400, "bad id")
	expect(t, s.request("POST", "/api/v1/delayed", nil), 405, "POST")
	s.request("GET", "/api/v1/delayed?limit=1", nil).JSON(t, &list)
	if list.Total != 1 || list.Delayed[0].Topic != "later/b" {
		t.Errorf("after cancel: %+v", list)
	}
	if st := b.Stats(); st.DelayedHeld != 1 {
		t.Errorf("held %d, want 1", st.DelayedHeld)
	}
}

// The per-topic counters are in the JSON API and as Prometheus series with
// the filter as label; the busiest topics are ranked by message rate.
func TestTopicMetricsAPI(t *testing.T) {
	t.Parallel()
	b := runBroker(t, func(o *broker.Options) { o.TopicMetrics = []string{"quiet/#", "busy/#"} })
	s := runAdmin(t, b.Server, admin.Options{})
	sub := connect(t, b.Addr, "tsub")
	sub.subscribe("#", 1)
	pub := connect(t, b.Addr, "tpub")
	for range 20 {
		pub.publish("busy/x", "12345", 1, false)
	}
	pub.publish("quiet/x", "1", 0, false)
	for range 21 {
		sub.receive()
	}
	var tm admin.TopicMetricList
	s.request("GET", "/api/v1/metrics/topics", nil).JSON(t, &tm)
	if len(tm.Topics) != 2 || tm.Topics[1].Filter != "busy/#" {
		t.Fatalf("topics %+v", tm)
	}
	busy := tm.Topics[1]
	if busy.MessagesIn != 20 || busy.BytesIn != 100 || busy.MessagesOut != 20 || busy.BytesOut != 100 ||
		busy.MessagesInByQoS != [3]uint64{0, 20, 0} || busy.MessagesOutByQoS != [3]uint64{0, 20, 0} || busy.RateIn <= 0 {
		t.Errorf("busy/# %+v", busy)
	}
	var top admin.TopicList
	s.request("GET", "/api/v1/topics", nil).JSON(t, &top)
	if top.RankedBy != "message_rate" || len(top.Topics) != 2 || top.Topics[0].Filter != "busy/#" || top.Topics[0].RateIn <= top.Topics[1].RateIn {
		t.Errorf("busiest %+v", top)
	}
	r := s.request("GET", "/metrics", nil)
	for _, want := range []string{
		`gannet_topic_messages_received_total{filter="busy/#",qos="1"} 20`,
		`gannet_topic_bytes_received_total{filter="busy/#"} 100`,
		`gannet_topic_messages_sent_total{filter="busy/#",qos="1"} 20`,
		`gannet_topic_messages_received_total{filter="quiet/#",qos="0"} 1`,
		`gannet_topic_messages_dropped_total{filter="busy/#",qos="1"} 0`,
		`gannet_delayed_messages 0`,
		`gannet_queued_bytes 0`,
	} {
		if !strings.Contains(string(r.Body), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
