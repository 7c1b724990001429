package config

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/broker"
	"github.com/gannet-mqtt/gannet/listener"
)

// Mosquitto configurations (mosquitto.conf, version 2.0) are translated
// option by option, with Mosquitto's meaning (docs/migrating-from-mosquitto.md
// lists each option):
//
//   - Every option the translation knows starts at Mosquitto 2.0's default
//     (mosquittoDefaults), not Gannet's: an absent option means what it
//     means to Mosquitto.
//   - With no listener line, Mosquitto listens on the loopback interface
//     only and admits anonymous clients unless allow_anonymous false; so
//     does the translation (127.0.0.1:1883).
//   - With listeners, allow_anonymous defaults to false, as in Mosquitto.
//     allow_anonymous false admits only clients a password file admits:
//     without one, nobody (require_auth).
//   - persistence false (Mosquitto's default) is store type memory;
//     persistence true is the pebble store in the directory
//     persistence_location/persistence_file.gannet. The mosquitto.db file
//     itself is not read.
//   - acl_file refuses no subscription; read access is decided per message
//     (auth.acl_read_at_delivery).
//   - 0 ("no limit") for max_inflight_messages and max_queued_messages
//     becomes the largest value Gannet takes.
//
// Options that change nothing in Gannet (log_dest, log_type, ...) are
// ignored with a warning; options Gannet has no equivalent for (plugins,
// ...) are reported as unsupported. Whatever is translated with a
// difference in behaviour gets a warning that says which. Bridge sections
// become entries of bridges (mosquitto_bridge.go).

// mosquittoListener is a listener section being translated.
type mosquittoListener struct {
	line       int    // of the listener (or port) line; 0 for an implicit default listener
	port, host string // as written
	websockets bool
	cafile     string
	crlfile    string
	subject    bool
	mountPoint string
	certfile   string
	keyfile    string
	reqCert    bool
	identity   bool
	tlsVersion string
	maxConns   int
	allowAnon  *bool
	at         map[string]int // key of Listener -> line
}

type mosquittoTranslator struct {
	f    *File
	name string
	errs Errors
	bad  map[string]bool

	listeners     []*mosquittoListener
	def           *mosquittoListener // the default listener (port, bind_address, options before any listener line)
	cur           *mosquittoListener // the listener section options apply to; nil before the first
	bridge        string             // the bridge section we are in, if any
	localCleanSet bool               // local_cleansession given in this bridge section
	perListener   bool
	allowAnon     *bool
	allowLine     int
	persistence   bool
	persistFile   string // persistence_file
	// listenerGlobals are lines of options Mosquitto applies per listener
	// and Gannet to all, met inside a listener section.
	listenerGlobals []int
	plugin          int // line of an auth plugin Gannet does not load, 0 if none
}

// translateMosquitto reads a Mosquitto configuration over f.
func translateMosquitto(f *File, name string, data []byte) (Errors, map[string]bool) {
	t := &mosquittoTranslator{f: f, name: name, bad: make(map[string]bool), persistFile: "mosquitto.db"}
	mosquittoDefaults(f)
	src := f.track()
	src.file, src.format = name, "mosquitto"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		word, args := mosquittoWords(sc.Text())
		if word != "" {
			t.option(n, word, args)
		}
	}
	if err := sc.Err(); err != nil {
		t.errorf(n+1, "", "%v", err)
	}
	t.finish()
	return t.errs, t.bad
}

// mosquittoDefaults sets every option the translation knows to Mosquitto
// 2.0's default, so that an option absent from a mosquitto.conf means what
// it means to Mosquitto whatever Gannet's own defaults are (these stay for
// YAML files). Options Mosquitto does not have keep Gannet's defaults.
func mosquittoDefaults(f *File) {
	l, m := &f.Limits, &f.MQTT
	l.MaxInflight = 20                        // max_inflight_messages
	m.ReceiveMaximum = 20                     // max_inflight_messages, announced in a 5.0 CONNACK
	l.MaxQueued = 1000                        // max_queued_messages
	l.MaxQueuedBytes = 0                      // max_queued_bytes: no limit
	l.QueueQoS0 = false                       // queue_qos0_messages
	l.MaxPacketSize = broker.NoMaxPacketSize  // max_packet_size: none, and none announced
	l.MaxPayloadSize = 0                      // message_size_limit
	l.MaxKeepAlive = 65535 * time.Second      // max_keepalive
	l.MaxConnections = 0                      // max_connections -1
	l.MemoryLimit = 0                         // memory_limit
	l.MaxSessionExpiry = 0                    // persistent_client_expiration: never
	m.MaximumQoS = 2                          // max_qos
	m.RetainAvailable = true                  // retain_available
	m.TopicAliasMaximum = 10                  // max_topic_alias
	m.AllowEmptyClientID = true               // allow_zero_length_clientid
	m.UpgradeOutgoingQoS = false              // upgrade_outgoing_qos
	f.Sys.Interval = 10 * time.Second         // sys_interval
	f.Auth.ACLReadAtDelivery = true           // acl_file: read checked per message
	f.Auth.ACLUserRulesFirst = true           // acl_file: a user's grant beats a deny pattern
	f.Auth.CheckRetainSource = true           // check_retain_source
	f.Auth.BadCredentialsNotAuthorized = true // a wrong password gets 5 / 0x87 (mosquitto 2.0.11)
}

// mosquittoWords splits a line into its option and arguments; "" for a
// blank or comment line.
func mosquittoWords(line string) (string, []string) {
	fields := strings.Fields(line)
	if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
		return "", nil
	}
	return fields[0], fields[1:]
}

func (t *mosquittoTranslator) errorf(line int, path, format string, a ...any) {
	t.errs = append(t.errs, &Error{Pos: Pos{File: t.name, Line: line}, Path: path, Msg: fmt.Sprintf(format, a...)})
	if path != "" {
		t.bad[path] = true
	}
}

func (t *mosquittoTranslator) warn(line int, format string, a ...any) {
	s := t.f.track()
	s.warnings = append(s.warnings, Warning{Pos: Pos{File: t.name, Line: line}, Msg: fmt.Sprintf(format, a...)})
}

// at records that the value at path came from line.
func (t *mosquittoTranslator) at(path string, line int) {
	t.f.setPos(path, Pos{File: t.name, Line: line})
}

// listener returns the section listener options apply to, creating the
// default listener for options that come before any listener line.
func (t *mosquittoTranslator) listener(line int) *mosquittoListener {
	if t.cur != nil {
		return t.cur
	}
	if t.def == nil {
		t.def = &mosquittoListener{port: "1883", at: make(map[string]int)}
		t.listeners = append(t.listeners, t.def)
	}
	if t.def.line == 0 {
		t.def.line = line
	}
	return t.def
}

// The options of a bridge section (mosquitto_bridge.go).
func isBridgeOption(w string) bool {
	switch w {
	case "address", "addresses", "topic", "cleansession", "clientid", "keepalive_interval",
		"local_clientid", "local_password", "local_username", "local_cleansession", "notifications",
		"notifications_local_only", "notification_topic", "remote_clientid",
		"remote_password", "remote_username", "restart_timeout", "round_robin",
		"start_type", "threshold", "try_private", "idle_timeout",
		"bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_cafile",
		"bridge_capath", "bridge_certfile", "bridge_keyfile", "bridge_identity",
		"bridge_insecure", "bridge_max_packet_size", "bridge_outgoing_retain",
		"bridge_protocol_version", "bridge_psk", "bridge_require_ocsp",
		"bridge_tls_version", "bridge_alpn", "bridge_receive_maximum",
		"bridge_session_expiry_interval", "bridge_max_topic_alias":
		return true
	}
	return false
}

// Options read and applied, options read and ignored, and options known to
// Mosquitto that Gannet does not have. The last two only serve to
// recognise a Mosquitto file and to word the warnings.
var (
	mosquittoIgnored = map[string]string{
		"log_dest":                "Gannet logs to standard error (see logging.level, logging.format)",
		"log_type":                "Gannet logs to standard error (see logging.level, logging.format)",
		"log_facility":            "Gannet logs to standard error (see logging.level, logging.format)",
		"log_timestamp":           "Gannet's log lines always carry a time",
		"log_timestamp_format":    "Gannet's log lines always carry a time",
		"connection_messages":     "Gannet logs connections at debug level (logging.level)",
		"websockets_log_level":    "Gannet logs to standard error (see logging.level)",
		"autosave_interval":       "Gannet writes every change through to its store",
		"autosave_on_changes":     "Gannet writes every change through to its store",
		"pid_file":                "Gannet writes no pid file; use your service manager",
		"user":                    "Gannet does not change user; start it as the user it should run as",
		"set_tcp_nodelay":         "Gannet always sets TCP_NODELAY",
		"websockets_headers_size": "not needed by Gannet's WebSocket server",
		"socket_domain":           "Gannet listens on the address given, IPv4 or IPv6",
	}
	// mosquittoUnsupported says, for each option Gannet does not have,
	// what happens instead ("": worded where it is met).
	mosquittoUnsupported = map[string]string{
		"include_dir":                     "the files in that directory are not read; merge them into this file",
		"auth_plugin":                     "",
		"plugin":                          "",
		"global_plugin":                   "",
		"password_file_plugin":            "",
		"acl_file_plugin":                 "Gannet loads no Mosquitto plugin; the acl_file (if any) decides",
		"connection":                      "",
		"http_dir":                        "Gannet serves no files over HTTP",
		"capath":                          "use cafile with a bundle of the CAs",
		"ciphers":                         "Go's TLS 1.2 cipher suites are used (forward secrecy and AEAD only)",
		"ciphers_tls1.3":                  "Go's TLS 1.3 cipher suites are used",
		"dhparamfile":                     "Gannet uses elliptic-curve key exchange",
		"psk_hint":                        "TLS-PSK is not supported; clients need certificates or passwords",
		"psk_file":                        "TLS-PSK is not supported; clients need certificates or passwords",
		"use_username_as_clientid":        "the client identifier is the one the client sends",
		"bind_interface":                  "listen on the interface's address instead (listener PORT ADDRESS)",
		"allow_duplicate_messages":        "Gannet delivers overlapping subscriptions once, at the highest QoS (MQTT 5.0 3.3.4)",
		"auto_id_prefix":                  "assigned client identifiers are Gannet's own (random hex)",
		"clientid_prefixes":               "clients with other identifiers are not refused; use the ACL's %c patterns",
		"persistent_client_expiration":    "persistent 3.1.1 sessions of named clients never expire (anonymous ones after limits.max_anonymous_session_expiry); 5.0 sessions follow their Session Expiry Interval",
		"max_inflight_bytes":              "only max_inflight_messages bounds the messages in flight",
		"accept_protocol_versions":        "every listener accepts MQTT 3.1, 3.1.1 and 5.0",
		"enable_proxy_protocol":           "use proxy_protocol and proxy_from in a Gannet YAML configuration",
		"retry_interval":                  "Gannet re-sends unacknowledged messages on reconnection only, as MQTT requires",
		"store_clean_interval":            "not needed by Gannet's store",
		"sys_interval_ms":                 "use sys_interval",
		"certfile_reload":                 "certificates are re-read on SIGHUP",
		"ocsp_responder":                  "OCSP is not checked; use crlfile",
		"require_ocsp":                    "OCSP is not checked; use crlfile",
		"tls_engine":                      "keys are read from keyfile only",
		"tls_keyform":                     "keys are read from keyfile (PEM) only",
		"tls_engine_kpass_sha1":           "keys are read from keyfile only",
		"disable_client_cert_date_checks": "client certificates are always checked for their dates",
	}
	mosquittoListenerOptions = map[string]bool{
		"protocol": true, "cafile": true, "certfile": true, "keyfile": true,
		"require_certificate": true, "use_identity_as_username": true, "tls_version": true,
		"max_connections": true, "crlfile": true, "use_subject_as_username": true,
		"mount_point": true,
	}
	mosquittoGlobalOptions = map[string]bool{
		"listener": true, "port": true, "bind_address": true, "allow_anonymous": true,
		"password_file": true, "acl_file": true, "per_listener_settings": true,
		"persistence": true, "persistence_location": true, "max_queued_messages": true, "max_queued_bytes": true,
		"max_inflight_messages": true, "max_packet_size": true, "max_keepalive": true,
		"message_size_limit": true, "retain_available": true, "sys_interval": true,
		"max_qos": true, "maximum_qos": true, "max_topic_alias": true, "queue_qos0_messages": true,
		"memory_limit": true, "persistence_file": true, "allow_zero_length_clientid": true,
		"check_retain_source": true, "upgrade_outgoing_qos": true,
	}
)

// mosquittoKnown reports whether w is an option of mosquitto.conf.
func mosquittoKnown(w string) bool {
	_, ignored := mosquittoIgnored[w]
	_, unsupported := mosquittoUnsupported[w]
	return ignored || unsupported || mosquittoListenerOptions[w] ||
		mosquittoGlobalOptions[w] || isBridgeOption(w) ||
		strings.HasPrefix(w, "plugin_opt_") || strings.HasPrefix(w, "auth_opt_")
}

// option translates one line.
func (t *mosquittoTranslator) option(n int, w string, args []string) {
	if w == "connection" {
		t.localCleanSet = false
		t.newBridge(n, args)
		return
	}
	if t.bridge != "" && isBridgeOption(w) {
		t.bridgeOption(n, w, args)
		return
	}
	if t.bridge != "" && mosquittoListenerOptions[w] && w != "max_connections" && w != "listener" {
		t.warn(n, "unsupported option %q (bridge %q)", w, t.bridge)
		return
	}
	if t.bridge == "" && isBridgeOption(w) {
		t.warn(n, "unsupported option %q: a bridge option outside a connection section", w)
		return
	}
	if why, ok := mosquittoIgnored[w]; ok {
		t.warn(n, "%s ignored: %s", w, why)
		return
	}
	if !mosquittoListenerOptions[w] && !mosquittoGlobalOptions[w] {
		switch w {
		case "auth_plugin", "plugin", "global_plugin", "password_file_plugin":
			if t.plugin == 0 {
				t.plugin = n
			}
			t.warn(n, "unsupported option %q: Gannet loads no Mosquitto plugin; clients it would have admitted are refused unless the password file admits them", w)
		default:
			if why := mosquittoUnsupported[w]; why != "" {
				t.warn(n, "unsupported option %q: %s", w, why)
			} else {
				t.warn(n, "unsupported option %q", w)
			}
		}
		return
	}
	if w == "listener" {
		t.bridge = ""
		t.newListener(n, args)
		return
	}
	var value string
	switch {
	case len(args) == 0:
		t.errorf(n, "", "%s: no value", w)
		return
	case len(args) > 1:
		t.errorf(n, "", "%s: one value expected, got %q", w, strings.Join(args, " "))
		return
	default:
		value = args[0]
	}
	if mosquittoListenerOptions[w] && (w != "max_connections" || t.cur != nil || t.def != nil) {
		t.listenerOption(n, w, value)
		return
	}
	t.globalOption(n, w, value)
}

func (t *mosquittoTranslator) newListener(n int, args []string) {
	if len(args) < 1 || len(args) > 2 {
		t.errorf(n, "", "listener: want a port and an optional address, got %q", strings.Join(args, " "))
		t.cur = &mosquittoListener{at: make(map[string]int)} // keep its options away from the others
		return
	}
	l := &mosquittoListener{line: n, port: args[0], at: make(map[string]int)}
	if len(args) == 2 {
		l.host = args[1]
	}
	t.listeners = append(t.listeners, l)
	t.cur = l
}

// mosquittoBool parses Mosquitto's true and false.
func mosquittoBool(s string) (bool, bool) {
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func (t *mosquittoTranslator) listenerOption(n int, w, v string) {
	l := t.listener(n)
	switch w {
	case "protocol":
		switch v {
		case "mqtt":
			l.websockets = false
		case "websockets":
			l.websockets = true
		default:
			t.errorf(n, "", "protocol: %q is not mqtt or websockets", v)
			return
		}
		l.at["type"] = n
	case "cafile":
		l.cafile, l.at["tls.ca_file"] = v, n
	case "crlfile":
		l.crlfile, l.at["tls.crl_file"] = v, n
	case "mount_point":
		l.mountPoint, l.at["mount_point"] = v, n
	case "certfile":
		l.certfile, l.at["tls.cert_file"] = v, n
	case "keyfile":
		l.keyfile, l.at["tls.key_file"] = v, n
	case "require_certificate", "use_identity_as_username", "use_subject_as_username":
		b, ok := mosquittoBool(v)
		if !ok {
			t.errorf(n, "", "%s: %q is not true or false", w, v)
			return
		}
		switch w {
		case "require_certificate":
			l.reqCert, l.at["tls.client_auth"] = b, n
		case "use_identity_as_username":
			l.identity, l.at["identity_as_username"] = b, n
		default:
			l.subject, l.at["subject_as_username"] = b, n
		}
	case "tls_version":
		switch v {
		case "tlsv1.2":
			l.tlsVersion = "1.2"
		case "tlsv1.3":
			l.tlsVersion = "1.3"
		case "tlsv1", "tlsv1.1":
			l.tlsVersion = "1.2"
			t.warn(n, "tls_version %s: Gannet accepts TLS 1.2 and later only", v)
		default:
			t.errorf(n, "", "tls_version: %q is not tlsv1.2 or tlsv1.3", v)
			return
		}
		l.at["tls.min_version"] = n
	case "max_connections":
		c, err := strconv.Atoi(v)
		if err != nil {
			t.errorf(n, "", "max_connections: %q is not a number", v)
			return
		}
		l.maxConns, l.at["max_connections"] = max(c, 0), n // -1: no limit
	}
}

func (t *mosquittoTranslator) globalOption(n int, w, v string) {
	num := func() (int64, bool) {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.errorf(n, "", "%s: %q is not a number", w, v)
			return 0, false
		}
		return i, true
	}
	boolean := func() (bool, bool) {
		b, ok := mosquittoBool(v)
		if !ok {
			t.errorf(n, "", "%s: %q is not true or false", w, v)
		}
		return b, ok
	}
	f := t.f
	switch w {
	case "port":
		l := t.listener(n)
		l.port, l.at["address"] = v, n
	case "bind_address":
		l := t.listener(n)
		l.host, l.at["address"] = v, n
	case "allow_anonymous":
		b, ok := boolean()
		if !ok {
			return
		}
		if t.perListener && t.cur != nil {
			t.cur.allowAnon, t.cur.at["anonymous"] = &b, n
		} else {
			t.allowAnon, t.allowLine = &b, n
		}
	case "per_listener_settings":
		if b, ok := boolean(); ok {
			t.perListener = b
		}
	case "password_file", "acl_file":
		path, field := "auth.password_file", &f.Auth.PasswordFile
		if w == "acl_file" {
			path, field = "auth.acl_file", &f.Auth.ACLFile
		}
		if *field != "" && *field != v {
			t.warn(n, "%s %s: Gannet has one %s for all listeners; keeping %s", w, v, w, *field)
			return
		}
		*field = v
		t.at(path, n)
	case "persistence":
		if b, ok := boolean(); ok {
			t.persistence = b
			t.at("store.type", n)
		}
	case "persistence_location":
		f.Store.DataDir = v
		t.at("store.data_dir", n)
	case "persistence_file":
		t.persistFile = v
		t.at("store.data_dir", n)
	case "allow_zero_length_clientid":
		if b, ok := boolean(); ok {
			f.MQTT.AllowEmptyClientID = b
			t.at("mqtt.allow_empty_client_id", n)
		}
	case "check_retain_source":
		if b, ok := boolean(); ok {
			f.Auth.CheckRetainSource = b
			t.at("auth.check_retain_source", n)
		}
	case "upgrade_outgoing_qos":
		if b, ok := boolean(); ok {
			f.MQTT.UpgradeOutgoingQoS = b
			t.at("mqtt.upgrade_outgoing_qos", n)
		}
	case "max_queued_messages":
		if i, ok := num(); ok {
			if i <= 0 {
				i = math.MaxInt32 // 0: no limit
			}
			f.Limits.MaxQueued = int(min(i, math.MaxInt32))
			t.at("limits.max_queued", n)
		}
	case "max_queued_bytes":
		if i, ok := num(); ok {
			f.Limits.MaxQueuedBytes = Size(max(i, 0)) // 0: no limit, in both
			t.at("limits.max_queued_bytes", n)
		}
	case "max_inflight_messages":
		if i, ok := num(); ok {
			if i <= 0 {
				i = 65535 // 0: no limit
			}
			f.Limits.MaxInflight = int(min(i, 65535))
			f.MQTT.ReceiveMaximum = f.Limits.MaxInflight // announced as Receive Maximum, as Mosquitto does
			t.at("limits.max_inflight", n)
			t.at("mqtt.receive_maximum", n)
		}
	case "max_packet_size":
		if i, ok := num(); ok {
			if i <= 0 {
				i = broker.NoMaxPacketSize // 0: no limit, none announced
			}
			f.Limits.MaxPacketSize = Size(i)
			t.at("limits.max_packet_size", n)
		}
	case "message_size_limit":
		if i, ok := num(); ok {
			f.Limits.MaxPayloadSize = Size(max(i, 0)) // 0: no limit
			t.at("limits.max_payload_size", n)
		}
	case "max_keepalive":
		if i, ok := num(); ok {
			f.Limits.MaxKeepAlive = time.Duration(i) * time.Second
			t.at("limits.max_keep_alive", n)
		}
	case "max_connections": // before any listener: the broker's
		if i, ok := num(); ok {
			f.Limits.MaxConnections = int(max(i, 0)) // -1: no limit
			t.at("limits.max_connections", n)
		}
	case "memory_limit":
		if i, ok := num(); ok {
			f.Limits.MemoryLimit = Size(max(i, 0))
			t.at("limits.memory_limit", n)
			if i > 0 {
				t.warn(n, "memory_limit: above it Gannet refuses new connections (0x97, or 3 for 3.1.1) instead of dropping messages and disconnecting their clients")
			}
		}
	case "retain_available":
		if b, ok := boolean(); ok {
			f.MQTT.RetainAvailable = b
			t.at("mqtt.retain_available", n)
		}
	case "queue_qos0_messages":
		if b, ok := boolean(); ok {
			f.Limits.QueueQoS0 = b
			t.at("limits.queue_qos0", n)
		}
	case "sys_interval":
		if i, ok := num(); ok {
			f.Sys.Interval = time.Duration(i) * time.Second
			t.at("sys.interval", n)
		}
	case "max_qos", "maximum_qos", "max_topic_alias":
		if t.cur != nil {
			t.listenerGlobals = append(t.listenerGlobals, n)
		}
	}
	switch w {
	case "max_qos", "maximum_qos":
		if i, ok := num(); ok {
			f.MQTT.MaximumQoS = int(i)
			t.at("mqtt.maximum_qos", n)
		}
	case "max_topic_alias":
		if i, ok := num(); ok {
			f.MQTT.TopicAliasMaximum = int(i)
			t.at("mqtt.topic_alias_maximum", n)
		}
	}
}

// finish writes the listeners and the store into the File.
func (t *mosquittoTranslator) finish() {
	f := t.f
	if t.persistence {
		// Beside where Mosquitto keeps its file, in a directory named
		// after it: removing it resets the state, as removing
		// mosquitto.db does for Mosquitto.
		f.Store.Type = "pebble"
		f.Store.DataDir = filepath.Join(f.Store.DataDir, t.persistFile+".gannet")
		if p, ok := f.src.at["store.type"]; ok {
			t.warn(p.Line, "persistence: Gannet keeps its store (pebble) in the directory %s; an existing %s is not read", f.Store.DataDir, t.persistFile)
		}
	} else {
		f.Store.Type = "memory"
	}

	if len(t.listeners) > 1 {
		for _, line := range t.listenerGlobals {
			t.warn(line, "applied to every listener: Gannet has one value for all, Mosquitto one per listener")
		}
	}
	f.Listeners = nil
	if len(t.listeners) == 0 {
		// Mosquitto's local only mode.
		allow := t.allowAnon == nil || *t.allowAnon
		l := defaultListener()
		l.Address = DefaultAddress
		l.Anonymous = anonymousWord(allow)
		l.RequireAuth = (!allow || t.plugin != 0) && f.Auth.PasswordFile == ""
		f.Listeners = append(f.Listeners, l)
		if t.allowLine != 0 {
			t.at("listeners[0].anonymous", t.allowLine)
		}
		return
	}
	for i, ml := range t.listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		if ml.line != 0 {
			t.at(path, ml.line)
		}
		l := defaultListener()
		tls := ml.certfile != "" || ml.keyfile != ""
		switch {
		case ml.websockets && tls:
			l.Type = "wss"
		case ml.websockets:
			l.Type = "ws"
		case tls:
			l.Type = "tls"
		}
		if ml.websockets {
			// Mosquitto upgrades any path and does not check the Origin
			// header: a web page on any site may connect.
			l.Path, l.OriginPatterns = listener.AnyPath, []string{"*"}
		}
		if ml.port == "0" && ml.host != "" && !ml.websockets {
			l.Type, l.Address = "unix", ml.host
		} else {
			l.Address = net.JoinHostPort(ml.host, ml.port)
		}
		allow := t.allowAnon
		anonLine := t.allowLine
		if t.perListener && (ml.allowAnon != nil || ml != t.def) {
			allow, anonLine = ml.allowAnon, ml.at["anonymous"]
		}
		l.Anonymous = anonymousWord(allow != nil && *allow)
		l.RequireAuth = (allow == nil || !*allow || t.plugin != 0) && f.Auth.PasswordFile == ""
		if anonLine != 0 {
			ml.at["anonymous"] = anonLine
		}
		l.MaxConnections = ml.maxConns
		l.MountPoint = ml.mountPoint
		switch {
		case !tls:
			for _, k := range []string{"tls.ca_file", "tls.client_auth", "tls.min_version", "tls.crl_file", "identity_as_username", "subject_as_username"} {
				if line, ok := ml.at[k]; ok {
					t.warn(line, "TLS option ignored: the listener has no certfile, so it does not use TLS")
					delete(ml.at, k)
				}
			}
		case ml.reqCert:
			l.TLS = TLS{CertFile: ml.certfile, KeyFile: ml.keyfile, CAFile: ml.cafile, ClientAuth: "required", MinVersion: ml.tlsVersion, CRLFile: ml.crlfile}
		default:
			// cafile still completes the chain sent to clients; no client
			// certificate is asked for, so a crlfile has nothing to check
			// and use_*_as_username refuses every client at CONNACK.
			l.TLS = TLS{CertFile: ml.certfile, KeyFile: ml.keyfile, CAFile: ml.cafile, MinVersion: ml.tlsVersion}
			if line, ok := ml.at["tls.crl_file"]; ok {
				t.warn(line, "crlfile has no effect: without require_certificate true no client certificate is asked for")
				delete(ml.at, "tls.crl_file")
			}
		}
		if tls {
			if ml.identity && ml.subject {
				t.warn(ml.at["subject_as_username"], "use_subject_as_username and use_identity_as_username both set: the subject is used, as Mosquitto does")
				ml.identity = false
				delete(ml.at, "identity_as_username")
			}
			l.IdentityAsUsername, l.SubjectAsUsername = ml.identity, ml.subject
			if (ml.identity || ml.subject) && !ml.reqCert {
				line := ml.at["identity_as_username"]
				if ml.subject {
					line = ml.at["subject_as_username"]
				}
				t.warn(line, "without require_certificate true no client certificate is asked for, so every client of this listener is refused (as by Mosquitto)")
			}
		}
		f.Listeners = append(f.Listeners, l)
		for k, line := range ml.at {
			t.at(path+"."+k, line)
		}
	}
}

func anonymousWord(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}
