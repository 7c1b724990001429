package config

import (
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/bridge"
	"github.com/gannet-mqtt/gannet/packet"
)

// Every option of a Mosquitto bridge section is translated; those without
// an equivalent are listed by line.
func TestMosquittoBridgeTranslation(t *testing.T) {
	f := mustLoad(t, "mosquitto.conf", `listener 1883
allow_anonymous true
connection cloud
address mqtt.example.com:8883 backup.example.com
topic sensors/# out 1 "" edge1/
topic cmd/# in 2 edge1/ devices/edge1/
topic "" both 0 status/here status/there
topic plain
bridge_protocol_version mqttv50
remote_clientid edge1
local_clientid local.edge1
remote_username edge
remote_password secret
cleansession true
local_cleansession false
bridge_session_expiry_interval 3600
keepalive_interval 30
restart_timeout 2 60
start_type lazy
threshold 20
idle_timeout 120
notifications true
notifications_local_only true
notification_topic edge/state
try_private false
bridge_outgoing_retain false
bridge_attempt_unsubscribe false
round_robin true
bridge_cafile /etc/ca.pem
bridge_certfile /etc/edge.pem
bridge_keyfile /etc/edge.key
bridge_insecure true
bridge_tls_version tlsv1.3
bridge_alpn mqtt
bridge_max_packet_size 65536
bridge_receive_maximum 50
bridge_max_topic_alias 10
bridge_bind_address 10.0.0.1
bridge_identity me
bridge_psk 00aa
local_username u
connection second
address 10.0.0.2
topic # both 1
`)
	var warnings []string
	for _, w := range f.Warnings() {
		warnings = append(warnings, w.String())
	}
	sameLines(t, warnings, []string{
		`mosquitto.conf:38: unsupported option "bridge_bind_address" (bridge "cloud"): the bridge's source address is the system's choice`,
		`mosquitto.conf:39: unsupported option "bridge_identity" (bridge "cloud"): TLS-PSK is not supported; use certificates`,
		`mosquitto.conf:40: unsupported option "bridge_psk" (bridge "cloud"): TLS-PSK is not supported; use certificates`,
		`mosquitto.conf:41: unsupported option "local_username" (bridge "cloud"): the bridge's local client is inside the broker and needs no credentials`,
	})
	rt, err := f.build(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Bridges) != 2 {
		t.Fatalf("bridges %+v", rt.Bridges)
	}
	want := bridge.Config{
		Name: "cloud", Addresses: []string{"mqtt.example.com:8883", "backup.example.com:1883"}, Transport: "tls",
		TLS:        bridge.TLS{CAFile: "/etc/ca.pem", CertFile: "/etc/edge.pem", KeyFile: "/etc/edge.key", Insecure: true, MinVersion: "tlsv1.3", ALPN: []string{"mqtt"}},
		RoundRobin: true, Version: packet.V5, RemoteClientID: "edge1", LocalClientID: "local.edge1",
		RemoteUsername: "edge", RemotePassword: "secret", CleanSession: true, LocalCleanSession: false,
		SessionExpiry: time.Hour, KeepAlive: 30 * time.Second, RestartMin: 2 * time.Second, RestartMax: time.Minute,
		StartType: bridge.Lazy, Threshold: 20, IdleTimeout: 2 * time.Minute,
		Notifications: true, NotificationsLocalOnly: true, NotificationTopic: "edge/state",
		MaxPacketSize: 65536, ReceiveMaximum: 50, MaxTopicAlias: 10,
		Rules: []bridge.Rule{
			{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "edge1/"},
			{Pattern: "cmd/#", Direction: bridge.In, QoS: 2, LocalPrefix: "edge1/", RemotePrefix: "devices/edge1/"},
			{Pattern: "", Direction: bridge.Both, QoS: 0, LocalPrefix: "status/here", RemotePrefix: "status/there"},
			{Pattern: "plain", Direction: bridge.Out},
		},
	}
	if !reflect.DeepEqual(rt.Bridges[0], want) {
		t.Errorf("bridge:\n got %+v\nwant %+v", rt.Bridges[0], want)
	}
	def := bridge.DefaultConfig("second")
	def.Addresses = []string{"10.0.0.2:1883"}
	def.Rules = []bridge.Rule{{Pattern: "#", Direction: bridge.Both, QoS: 1}}
	def.PrimaryRetry = 0 // the bridge package's default applies
	def.Transport = ""
	if !reflect.DeepEqual(rt.Bridges[1], def) {
		t.Errorf("second bridge, Mosquitto's defaults:\n got %+v\nwant %+v", rt.Bridges[1], def)
	}
}

// Errors in a bridge section come with their lines.
func TestMosquittoBridgeErrors(t *testing.T) {
	got := errorLines(t, "mosquitto.conf", `listener 1883
connection a
address h:1
topic x sideways
topic y out 3
cleansession perhaps
keepalive_interval soon
bridge_protocol_version mqttv9
connection b
topic z
`)
	sameLines(t, got, []string{
		`mosquitto.conf:2: bridges[0]: bridge "a": no topic rule: add at least one (pattern, direction, qos)`,
		`mosquitto.conf:4: topic: direction "sideways" is not in, out or both`,
		`mosquitto.conf:5: topic: QoS "3" is not 0, 1 or 2`,
		`mosquitto.conf:6: cleansession: "perhaps" is not true or false`,
		`mosquitto.conf:7: keepalive_interval: "soon" is not a number`,
		`mosquitto.conf:8: bridge_protocol_version: "mqttv9" is not mqttv31, mqttv311 or mqttv50`,
		`mosquitto.conf:9: bridges[1]: bridge "b": no address: give at least one host:port`,
	})
}

// The bridges section of a YAML file, with Mosquitto's defaults for what
// it leaves out, and its errors by line.
func TestYAMLBridges(t *testing.T) {
	f := mustLoad(t, "gannet.yaml", `bridges:
  - name: cloud
    addresses: [cloud.example.com:1883]
    protocol_version: "5"
    queue_max_bytes: 64MiB
    topics:
      - pattern: a/#
        direction: both
        qos: 1
      - pattern: b/#
`)
	rt, err := f.build(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := bridge.DefaultConfig("cloud")
	want.Addresses = []string{"cloud.example.com:1883"}
	want.Version = packet.V5
	want.QueueMaxBytes = 64 << 20
	want.PrimaryRetry = 0
	want.Transport = ""
	want.Rules = []bridge.Rule{{Pattern: "a/#", Direction: bridge.Both, QoS: 1}, {Pattern: "b/#", Direction: bridge.Out}}
	if len(rt.Bridges) != 1 || !reflect.DeepEqual(rt.Bridges[0], want) {
		t.Errorf("bridges:\n got %+v\nwant %+v", rt.Bridges, want)
	}
	got := errorLines(t, "gannet.yaml", `bridges:
  - name: x
    addresses: [h:1]
    topics:
      - pattern: a/#
        qos: 5
  - name: x
    addresses: [h:1]
    start_type: eager
    topics:
      - pattern: a/#
`)
	sameLines(t, got, []string{
		`gannet.yaml:2: bridges[0]: topic "a/#": qos 5: use 0, 1 or 2`,
		`gannet.yaml:7: bridges[1].name: bridge "x" is defined twice`,
		`gannet.yaml:7: bridges[1]: bridge "x": start_type "eager": use automatic, lazy or once`,
	})
}
