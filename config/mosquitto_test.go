package config

import (
	"reflect"
	"testing"
)

const mosquittoSample = `# A typical Mosquitto 2.0 configuration.
per_listener_settings false
allow_anonymous false
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
persistence true
persistence_location /var/lib/mosquitto/
max_queued_messages 500
max_inflight_messages 10
max_packet_size 65536
max_keepalive 120
retain_available false
sys_interval 30
log_type all
log_dest file /var/log/mosquitto/mosquitto.log
max_connections 1000
queue_qos0_messages true
memory_limit 1073741824
max_qos 1
max_topic_alias 5

listener 1883 127.0.0.1

listener 8883
certfile /etc/mosquitto/certs/server.pem
keyfile /etc/mosquitto/certs/server.key
cafile /etc/mosquitto/certs/ca.pem
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
max_connections 50

listener 8080
protocol websockets

listener 0 /run/mosquitto/mqtt.sock

connection bridge-01
address remote.example.com:1883
topic sensors/# out 1
bridge_protocol_version mqttv50
`

const mosquittoSampleYAML = `
listeners:
  - address: 127.0.0.1:1883
    anonymous: deny
  - type: tls
    address: ":8883"
    anonymous: deny
    max_connections: 50
    identity_as_username: true
    tls:
      cert_file: /etc/mosquitto/certs/server.pem
      key_file: /etc/mosquitto/certs/server.key
      ca_file: /etc/mosquitto/certs/ca.pem
      client_auth: required
      min_version: "1.3"
  - type: ws
    address: ":8080"
    anonymous: deny
    path: "*"
    origin_patterns: ["*"]
  - type: unix
    address: /run/mosquitto/mqtt.sock
    anonymous: deny
store:
  type: pebble
  data_dir: /var/lib/mosquitto/mosquitto.db.gannet
limits:
  max_queued: 500
  max_queued_bytes: 0
  max_inflight: 10
  max_packet_size: 64KiB
  max_keep_alive: 2m
  max_connections: 1000
  queue_qos0: true
  memory_limit: 1GiB
mqtt:
  retain_available: false
  maximum_qos: 1
  topic_alias_maximum: 5
  receive_maximum: 10
auth:
  password_file: /etc/mosquitto/passwd
  acl_file: /etc/mosquitto/acl
  acl_read_at_delivery: true
  acl_user_rules_first: true
  check_retain_source: true
  bad_credentials_not_authorized: true
sys:
  interval: 30s
bridges:
  - name: bridge-01
    addresses: [remote.example.com:1883]
    protocol_version: mqttv50
    topics:
      - pattern: sensors/#
        direction: out
        qos: 1
`

// A mosquitto.conf translates to the same configuration as the equivalent
// YAML, with a warning for each line it did not apply.
func TestMosquittoTranslation(t *testing.T) {
	m := mustLoad(t, "mosquitto.conf", mosquittoSample)
	y := mustLoad(t, "gannet.yaml", mosquittoSampleYAML)
	equalFiles(t, m, y)
	if !reflect.DeepEqual(m.brokerOptions(), y.brokerOptions()) {
		t.Errorf("broker options differ:\n%+v\n%+v", m.brokerOptions(), y.brokerOptions())
	}
	if _, format := m.Source(); format != "mosquitto" {
		t.Errorf("format %q", format)
	}
	var warnings []string
	for _, w := range m.Warnings() {
		warnings = append(warnings, w.String())
	}
	sameLines(t, warnings, []string{
		`mosquitto.conf:6: persistence: Gannet keeps its store (pebble) in the directory /var/lib/mosquitto/mosquitto.db.gannet; an existing mosquitto.db is not read`,
		`mosquitto.conf:14: log_type ignored: Gannet logs to standard error (see logging.level, logging.format)`,
		`mosquitto.conf:15: log_dest ignored: Gannet logs to standard error (see logging.level, logging.format)`,
		`mosquitto.conf:18: memory_limit: above it Gannet refuses new connections (0x97, or 3 for 3.1.1) instead of dropping messages and disconnecting their clients`,
	})
	// Its YAML form reads back to the same configuration.
	b, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	equalFiles(t, mustLoad(t, "translated.yaml", string(b)), m)
	if y.Warnings() != nil {
		t.Errorf("YAML file has warnings %v", y.Warnings())
	}
}

// Errors in a mosquitto.conf come with its lines, and problems found by
// Validate point at the Mosquitto line the value came from.
func TestMosquittoErrors(t *testing.T) {
	got := errorLines(t, "mosquitto.conf", `listener 1883
allow_anonymous maybe
max_inflight_messages ten
max_qos 3
listener 8883
certfile /etc/server.pem
require_certificate true
protocol smoke-signals
password_file
bridge_protocol_version mqttv50
`)
	sameLines(t, got, []string{
		`mosquitto.conf:2: allow_anonymous: "maybe" is not true or false`,
		`mosquitto.conf:3: max_inflight_messages: "ten" is not a number`,
		`mosquitto.conf:4: mqtt.maximum_qos: must be between 0 and 2`,
		`mosquitto.conf:5: listeners[1].tls.key_file: empty; a tls listener needs a private key`,
		`mosquitto.conf:5: listeners[1].tls.ca_file: empty; ClientAuth required needs the CAs that sign client certificates`,
		`mosquitto.conf:8: protocol: "smoke-signals" is not mqtt or websockets`,
		`mosquitto.conf:9: password_file: no value`,
	})
	f, _ := Parse("mosquitto.conf", []byte("bridge_protocol_version mqttv50\nlistener 1883\n"))
	if w := f.Warnings(); len(w) != 1 || w[0].String() != `mosquitto.conf:1: unsupported option "bridge_protocol_version": a bridge option outside a connection section` {
		t.Errorf("warnings %v", w)
	}
}

// Mosquitto's defaults: without listeners, loopback only with anonymous
// clients; with listeners, anonymous clients denied; no persistence.
func TestMosquittoDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []Listener
	}{
		{"local only", "max_inflight_messages 20\n", []Listener{{Type: "tcp", Address: "127.0.0.1:1883", Anonymous: "allow"}}},
		{"local only, anonymous off", "allow_anonymous false\n", []Listener{{Type: "tcp", Address: "127.0.0.1:1883", Anonymous: "deny", RequireAuth: true}}},
		{"listener", "listener 1883\n", []Listener{{Type: "tcp", Address: ":1883", Anonymous: "deny", RequireAuth: true}}},
		{"port and bind_address", "port 1884\nbind_address 10.0.0.1\nallow_anonymous true\n", []Listener{{Type: "tcp", Address: "10.0.0.1:1884", Anonymous: "allow"}}},
		{"per listener settings", `per_listener_settings true
listener 1883
allow_anonymous true
listener 1884
password_file /etc/passwd
`, []Listener{{Type: "tcp", Address: ":1883", Anonymous: "allow"}, {Type: "tcp", Address: ":1884", Anonymous: "deny"}}},
		{"wss, cafile without require_certificate", `listener 8443
protocol websockets
certfile /c.pem
keyfile /k.pem
cafile /ca.pem
tls_version tlsv1.2
`, []Listener{{Type: "wss", Address: ":8443", Anonymous: "deny", RequireAuth: true, TLS: TLS{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem", MinVersion: "1.2"}, Path: "*", OriginPatterns: []string{"*"}}}},
		{"no limit", "listener 1883\nmax_connections -1\n", []Listener{{Type: "tcp", Address: ":1883", Anonymous: "deny", RequireAuth: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustLoad(t, "mosquitto.conf", tc.conf)
			if !reflect.DeepEqual(f.Listeners, tc.want) {
				t.Errorf("listeners\n got %+v\nwant %+v", f.Listeners, tc.want)
			}
			if f.Store.Type != "memory" {
				t.Errorf("store %q, want memory (persistence false)", f.Store.Type)
			}
		})
	}
	f := mustLoad(t, "m.conf", "listener 1883\nmax_inflight_messages 0\nmax_queued_messages 0\nmax_packet_size 0\nmessage_size_limit 1000\n")
	if f.Limits.MaxInflight != 65535 || f.Limits.MaxQueued < 1e9 || f.Limits.MaxPacketSize != 268435460 {
		t.Errorf("0 (no limit) translated to %+v", f.Limits)
	}
	f = mustLoad(t, "m.conf", "listener 1883\nmax_queued_bytes 1000000\n")
	if f.Limits.MaxQueuedBytes != 1000000 {
		t.Errorf("max_queued_bytes 1000000 translated to %d", f.Limits.MaxQueuedBytes)
	}
	f = mustLoad(t, "m.conf", "listener 1883\nmessage_size_limit 1000\n")
	if f.Limits.MaxPayloadSize != 1000 || f.Limits.MaxPacketSize != 268435460 || len(f.Warnings()) != 0 {
		t.Errorf("message_size_limit: max_payload_size %d, max_packet_size %d, warnings %v", f.Limits.MaxPayloadSize, f.Limits.MaxPacketSize, f.Warnings())
	}
}

// A file is read as Mosquitto's only when it looks like one.
func TestDetectMosquitto(t *testing.T) {
	for in, want := range map[string]bool{
		"listener 1883\n":                         true,
		"# comment\n\n  allow_anonymous true\n":   true,
		"bridge_protocol_version x\nlistener 1\n": true,
		"listeners:\n  - address: x\n":            false,
		"limits: {}\n":                            false,
		"---\nlistener 1883\n":                    false,
		"- a\n":                                   false,
		"":                                        false,
		"hello world\n":                           false,
	} {
		if got := isMosquitto([]byte(in)); got != want {
			t.Errorf("isMosquitto(%q) = %v, want %v", in, got, want)
		}
	}
}
