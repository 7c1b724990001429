package config

import (
	"errors"
	"reflect"
	"testing"
)

// Bad files: every problem at once, each with its line.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", `
limits:
  max_inflite: 4
`, []string{`g.yaml:3: limits.max_inflite: unknown key (did you mean max_inflight?)`}},

		{"key in the wrong section", `
max_inflight: 4
`, []string{`g.yaml:2: max_inflight: unknown key (did you mean limits.max_inflight?)`}},

		{"unknown section", `
listners: []
`, []string{`g.yaml:2: listners: unknown key (did you mean listeners?)`}},

		{"unknown listener key", `
listeners:
  - address: 127.0.0.1:1883
    port: 1883
`, []string{`g.yaml:4: listeners[0].port: unknown key; known keys here: address, anonymous, first_byte_timeout, handshake_timeout, identity_as_username, max_connections, max_pending_per_source, mount_point, name, origin_patterns, path, proxy_from, proxy_protocol, require_auth, socket_mode, subject_as_username, tls, type`}},

		{"wrong types", `
limits:
  max_inflight: lots
  max_queued: "100"
  connect_timeout: 10
  max_packet_size: big
  queue_qos0: yes
  connection_rate: fast
mqtt:
  retain_available: 1
listeners: tcp
auth: [password_file]
store:
  data_dir: {a: b}
`, []string{
			`g.yaml:3: limits.max_inflight: want an integer, got "lots"`,
			`g.yaml:4: limits.max_queued: want an integer, got "100"`,
			`g.yaml:5: limits.connect_timeout: 10 has no unit: write it as 10s, 10ms, ...`,
			`g.yaml:6: limits.max_packet_size: "big" is not a size: want bytes or a number with a unit, like 4MiB`,
			`g.yaml:7: limits.queue_qos0: want true or false, got "yes"`,
			`g.yaml:8: limits.connection_rate: want a number, got "fast"`,
			`g.yaml:10: mqtt.retain_available: want true or false, got 1`,
			`g.yaml:11: listeners: want a list, got "tcp"`,
			`g.yaml:12: auth: want a mapping of keys, got a list`,
			`g.yaml:14: store.data_dir: want a string, got a mapping`,
		}},

		{"out of range", `
limits:
  max_inflight: 0
  max_packet_size: 10
  max_keep_alive: 70000s
  max_client_id_length: 5
  write_buffer_limit: 8KiB
  write_buffer_hard_limit: 2KiB
  max_session_expiry: 1.5s
  connection_rate: -1
mqtt:
  maximum_qos: 3
  receive_maximum: 0
  share_strategy: fair
`, []string{
			`g.yaml:3: limits.max_inflight: must be between 1 and 65535`,
			`g.yaml:4: limits.max_packet_size: must be between 20 and 268435460`,
			`g.yaml:5: limits.max_keep_alive: must be between 0s and 65535s`,
			`g.yaml:6: limits.max_client_id_length: must be at least 23 [MQTT-3.1.3-5]`,
			`g.yaml:8: limits.write_buffer_hard_limit: must be 0 (16 x write_buffer_limit) or at least write_buffer_limit (8KiB)`,
			`g.yaml:9: limits.max_session_expiry: 1.5s is not a whole number of seconds`,
			`g.yaml:10: limits.connection_rate: must not be negative`,
			`g.yaml:12: mqtt.maximum_qos: must be between 0 and 2`,
			`g.yaml:13: mqtt.receive_maximum: must be between 1 and 65535`,
			`g.yaml:14: mqtt.share_strategy: "fair" is not round_robin or random`,
		}},

		{"several at once, in file order", `
logging:
  level: loud
  format: xml
limits:
  max_inflight: 100000
  max_inflight: 5
  bogus: 1
  write_buffer_limit: 100
store:
  type: disk
  fsync: sometimes
  fsync_interval: -1s
admin:
  address: localhost
  token: two words
sys:
  interval: -10s
`, []string{
			`g.yaml:3: logging.level: "loud" is not debug, info, warn or error`,
			`g.yaml:4: logging.format: "xml" is not text or json`,
			`g.yaml:6: limits.max_inflight: must be between 1 and 65535`,
			`g.yaml:7: limits.max_inflight: repeated; first set on line 6`,
			`g.yaml:8: limits.bogus: unknown key`,
			`g.yaml:9: limits.write_buffer_limit: must be at least 1KiB`,
			`g.yaml:11: store.type: "disk" is not pebble or memory`,
			`g.yaml:12: store.fsync: "sometimes" is not always, interval or never`,
			`g.yaml:13: store.fsync_interval: must not be negative`,
			`g.yaml:15: admin.address: "localhost" is not host:port`,
			`g.yaml:16: admin.token: has white space, which an Authorization header cannot carry`,
			`g.yaml:18: sys.interval: must not be negative`,
		}},

		{"listeners", `
listeners:
  - type: tcp
    address: 127.0.0.1:1883
    anonymous: maybe
    tls:
      cert_file: server.pem
  - name: mqtts
    type: tls
    address: 0.0.0.0:8883
    identity_as_username: true
  - type: ws
    address: 127.0.0.1:1883
    path: mqtt
    proxy_from: [10.0.0.0/33, 10.1.2.3/8]
  - type: udp
    address: 0.0.0.0:1883
    socket_mode: "0660"
  - name: mqtts
    type: tcp
    address: "[::1]:99999"
    proxy_protocol: true
`, []string{
			`g.yaml:5: listeners[0].anonymous: "maybe" is not default, allow or deny`,
			`g.yaml:6: listeners[0].tls: set on a tcp listener, which does not use TLS`,
			`g.yaml:8: listeners[1].tls.cert_file: empty; a tls listener needs a certificate`,
			`g.yaml:8: listeners[1].tls.key_file: empty; a tls listener needs a private key`,
			`g.yaml:13: listeners[2].address: 127.0.0.1:1883 is also the address of listeners[0]`,
			`g.yaml:14: listeners[2].path: "mqtt" does not start with /`,
			`g.yaml:15: listeners[2].proxy_from[0]: "10.0.0.0/33" is not a CIDR prefix (10.0.0.0/8) or an address`,
			`g.yaml:15: listeners[2].proxy_from[1]: "10.1.2.3/8" has bits set past the prefix length; did you mean 10.0.0.0/8?`,
			`g.yaml:16: listeners[3].type: "udp" is not tcp, tls, ws, wss or unix`,
			`g.yaml:19: listeners[4].proxy_from: empty; ProxyProtocol needs the addresses of the trusted proxies`,
			`g.yaml:19: listeners[4].name: "mqtts" is also the name of listeners[1]`,
			`g.yaml:21: listeners[4].address: port "99999" is not a number from 0 to 65535`,
		}},

		{"no listeners", "listeners: []\n", []string{`g.yaml:1: listeners: no listeners: add at least one`}},

		{"auth", `
auth:
  password_file: /etc/gannet/passwd
  acl_file: /etc/gannet/acl
  http:
    auth_url: http://x/auth
    acl_url: ftp://x/acl
    timeout: 0s
    cache_size: -1
`, []string{
			`g.yaml:6: auth.http.auth_url: set together with auth.password_file; use one of them`,
			`g.yaml:7: auth.http.acl_url: set together with auth.acl_file; use one of them`,
			`g.yaml:7: auth.http.acl_url: "ftp://x/acl" is not an absolute http or https URL`,
			`g.yaml:8: auth.http.timeout: must be above zero`,
			`g.yaml:9: auth.http.cache_size: must not be negative`,
		}},

		{"a default made invalid by another key", `
store:
  type: pebble
  data_dir: ""
`, []string{`g.yaml:4: store.data_dir: empty; the pebble store needs a directory`}},

		{"syntax error", "limits:\n  max_inflight: [1, 2\n", []string{`g.yaml:2: YAML syntax error: sequence end token ']' not found`}},

		{"not a mapping", "- a\n- b\n", []string{`g.yaml:1: the file must be a YAML mapping of sections (listeners:, limits:, ...), got a list`}},

		{"two documents", "limits: {}\n---\nmqtt: {}\n", []string{`g.yaml:3: a second YAML document (after ---); put everything in one`}},

		{"merge keys", "limits:\n  <<: {max_inflight: 4}\n", []string{`g.yaml:2: limits: merge keys (<<) are not supported; write the keys out`}},

		{"undefined alias", "limits:\n  max_inflight: *nope\n", []string{`g.yaml:2: limits.max_inflight: alias *nope is not defined before it is used`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameLines(t, errorLines(t, "g.yaml", tc.yaml), tc.want)
		})
	}
}

// Errors carry their position as fields too, and Load returns the File
// with the error.
func TestErrorFields(t *testing.T) {
	f, err := Parse("g.yaml", []byte("limits:\n  max_inflight: 0\n"))
	if f == nil {
		t.Fatal("no File returned with the error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: no *Error", err)
	}
	if e.File != "g.yaml" || e.Line != 2 || e.Path != "limits.max_inflight" || e.Msg != "must be between 1 and 65535" {
		t.Errorf("%+v", e)
	}
	if err.Error() != "g.yaml:2: limits.max_inflight: must be between 1 and 65535" {
		t.Errorf("Error() = %q", err.Error())
	}
	_, err = Parse("g.yaml", []byte("limits:\n  max_inflight: 0\n  max_queued: -1\n"))
	if err.Error() != "g.yaml:2: limits.max_inflight: must be between 1 and 65535\ng.yaml:3: limits.max_queued: must not be negative" {
		t.Errorf("Error() = %q, want one line per problem", err.Error())
	}
	// Validate on the File gives the same answer.
	sameLines(t, lines(t, f.Validate()), []string{"g.yaml:2: limits.max_inflight: must be between 1 and 65535"})
	// A File made in code has no positions.
	d := Default()
	d.Limits.MaxInflight = 0
	sameLines(t, lines(t, d.Validate()), []string{"limits.max_inflight: must be between 1 and 65535"})
}

// Anchors and aliases work; empty sections keep their defaults.
func TestAnchors(t *testing.T) {
	f := mustLoad(t, "a.yaml", `
auth:
limits:
  max_inflight: &n 100
  max_queued: *n
listeners:
  - &l {type: tcp, address: "127.0.0.1:1883"}
  - {type: tcp, address: "127.0.0.1:1884", name: !!str 1884}
`)
	if f.Limits.MaxInflight != 100 || f.Limits.MaxQueued != 100 {
		t.Errorf("limits %+v", f.Limits)
	}
	if !reflect.DeepEqual(f.Auth, Default().Auth) {
		t.Errorf("auth %+v", f.Auth)
	}
	if len(f.Listeners) != 2 || f.Listeners[1].Name != "1884" || f.Listeners[1].Anonymous != "default" {
		t.Errorf("listeners %+v", f.Listeners)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "1024": 1024, "1_000": 1000, "4MiB": 4 << 20, "4 MiB": 4 << 20, "512KiB": 512 << 10,
		"1GiB": 1 << 30, "1.5GiB": 3 << 29, "2TiB": 2 << 40, "10B": 10, "1kB": 1000, "1KB": 1000,
		"3MB": 3e6, "2GB": 2e9,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "4 XB", "lots", "1e400", "9999999TiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for s, want := range map[Size]string{0: "0", 1000: "1000", 1024: "1KiB", 4 << 20: "4MiB", 3 << 29: "1536MiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
	for in, want := range map[string]Mode{"0660": 0o660, "660": 0o660, "0o600": 0o600} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("0990"); err == nil {
		t.Error("ParseMode(0990) succeeded")
	}
}
