package admin_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/admin"
	"github.com/gannet-mqtt/gannet/broker"
)

// Issue 16 point 9: the admin token is a superuser for the ACL, but a
// publish through the API is held to the broker's size and topic limits
// and never writes the broker's own $SYS topics: an 11 MiB payload does
// not reach a 3.1.1 subscriber of a broker whose packets are limited to
// 1 MiB.
func TestAdminPublishLimits(t *testing.T) {
	b := runBroker(t, func(o *broker.Options) { o.MaxTopicLevels = 4 })
	s := runAdmin(t, b.Server, admin.Options{Token: "t"})
	sub := connect(t, b.Addr, "v311-subscriber")
	sub.subscribe("big/#", 0)
	sub.subscribe("$SYS/admin/#", 0)

	big := base64.StdEncoding.EncodeToString(make([]byte, 11<<20))
	// Encoding, sending and decoding 15 MB of JSON is CPU work that takes
	// from 2 s to well over waitFor under the race detector on a loaded
	// machine: this request's deadline is about the machine, not the broker.
	r := s.requestTimeout("POST", "/api/v1/publish", map[string]any{"topic": "big/blob", "payload_base64": big}, time.Minute)
	expect(t, r, http.StatusRequestEntityTooLarge, "11 MiB publish")
	// One byte over, counting the PUBLISH header (1 + 3 + 2 + topic, and
	// 1 for 5.0 properties), is refused too.
	limit := b.PublishLimits().MaxPacketSize
	r = s.request("POST", "/api/v1/publish", map[string]any{"topic": "big/edge", "payload": strings.Repeat("x", limit-len("big/edge")-6)})
	expect(t, r, http.StatusRequestEntityTooLarge, "publish one byte over max_packet_size")
	r = s.request("POST", "/api/v1/publish", map[string]any{"topic": "$SYS/admin/fake", "payload": "1"})
	expect(t, r, http.StatusForbidden, "publish to $SYS")
	r = s.request("POST", "/api/v1/publish", map[string]any{"topic": "big/a/b/c/d", "payload": "1"})
	expect(t, r, http.StatusBadRequest, "publish 5 levels with max_topic_levels 4")

	// The subscriber gets the next message that fits, and nothing before.
	r = s.request("POST", "/api/v1/publish", map[string]any{"topic": "big/fits", "payload": strings.Repeat("y", limit-len("big/fits")-7)})
	expect(t, r, http.StatusOK, "publish at max_packet_size")
	if p := sub.receive(); p.Topic != "big/fits" {
		t.Errorf("subscriber got %s (%d bytes) first, want big/fits", p.Topic, len(p.Payload))
	}
	if m, _ := b.Retained("big/blob"); len(m) != 0 {
		t.Error("refused publish retained")
	}
}
