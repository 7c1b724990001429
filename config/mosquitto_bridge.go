package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mosquitto's bridge sections ("connection <name>" and the options after
// it) become entries of bridges. Options without an equivalent are listed
// with their line as unsupported.

// mosquittoBridgeUnsupported are bridge options Gannet does not have.
var mosquittoBridgeUnsupported = map[string]string{
	"bridge_bind_address": "the bridge's source address is the system's choice",
	"bridge_identity":     "TLS-PSK is not supported; use certificates",
	"bridge_psk":          "TLS-PSK is not supported; use certificates",
	"bridge_require_ocsp": "OCSP stapling is not checked",
	"local_username":      "the bridge's local client is inside the broker and needs no credentials",
	"local_password":      "the bridge's local client is inside the broker and needs no credentials",
}

// newBridge starts a bridge section.
func (t *mosquittoTranslator) newBridge(n int, args []string) {
	t.bridge = strings.Join(args, " ")
	b := defaultBridge()
	b.Name = t.bridge
	if len(args) != 1 {
		t.errorf(n, "", "connection: want one name, got %q", t.bridge)
	}
	t.f.Bridges = append(t.f.Bridges, b)
	t.at(t.bridgePath(""), n)
	t.at(t.bridgePath("name"), n)
}

func (t *mosquittoTranslator) bridgePath(key string) string {
	p := fmt.Sprintf("bridges[%d]", len(t.f.Bridges)-1)
	if key != "" {
		p += "." + key
	}
	return p
}

// bridgeOption translates one option of the current bridge section.
func (t *mosquittoTranslator) bridgeOption(n int, w string, args []string) {
	b := &t.f.Bridges[len(t.f.Bridges)-1]
	if why, ok := mosquittoBridgeUnsupported[w]; ok {
		t.warn(n, "unsupported option %q (bridge %q): %s", w, t.bridge, why)
		return
	}
	if len(args) == 0 {
		t.errorf(n, "", "%s: no value", w)
		return
	}
	one := func() (string, bool) {
		if len(args) != 1 {
			t.errorf(n, "", "%s: one value expected, got %q", w, strings.Join(args, " "))
			return "", false
		}
		return args[0], true
	}
	boolean := func(dst *bool, key string) {
		if v, ok := one(); ok {
			if x, ok := mosquittoBool(v); ok {
				*dst = x
				t.at(t.bridgePath(key), n)
			} else {
				t.errorf(n, "", "%s: %q is not true or false", w, v)
			}
		}
	}
	number := func(key string) (int, bool) {
		v, ok := one()
		if !ok {
			return 0, false
		}
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			t.errorf(n, "", "%s: %q is not a number", w, v)
			return 0, false
		}
		t.at(t.bridgePath(key), n)
		return x, true
	}
	seconds := func(dst *time.Duration, key string) {
		if x, ok := number(key); ok {
			*dst = time.Duration(x) * time.Second
		}
	}
	str := func(dst *string, key string) {
		if v, ok := one(); ok {
			*dst = v
			t.at(t.bridgePath(key), n)
		}
	}
	switch w {
	case "address", "addresses":
		for _, a := range args {
			if !strings.Contains(a, ":") || strings.HasSuffix(a, "]") {
				a += ":1883"
			}
			b.Addresses = append(b.Addresses, a)
		}
		t.at(t.bridgePath("addresses"), n)
	case "topic":
		t.bridgeTopic(n, b, args)
	case "bridge_protocol_version":
		if v, ok := one(); ok {
			if _, ok := protocolVersion(v); !ok || !strings.HasPrefix(v, "mqttv") {
				t.errorf(n, "", "bridge_protocol_version: %q is not mqttv31, mqttv311 or mqttv50", v)
				return
			}
			b.ProtocolVersion = v
			t.at(t.bridgePath("protocol_version"), n)
		}
	case "remote_clientid", "clientid":
		str(&b.RemoteClientID, "remote_clientid")
	case "local_clientid":
		str(&b.LocalClientID, "local_clientid")
	case "remote_username", "username":
		str(&b.RemoteUsername, "remote_username")
	case "remote_password", "password":
		str(&b.RemotePassword, "remote_password")
	case "cleansession":
		boolean(&b.CleanSession, "cleansession")
		if !t.localCleanSet {
			b.LocalCleanSession = b.CleanSession // Mosquitto: local_cleansession follows cleansession
		}
	case "local_cleansession":
		boolean(&b.LocalCleanSession, "local_cleansession")
		t.localCleanSet = true
	case "bridge_session_expiry_interval":
		seconds(&b.SessionExpiry, "session_expiry")
	case "keepalive_interval":
		seconds(&b.KeepAlive, "keepalive")
	case "restart_timeout":
		// One value: a constant wait; two: backoff from the first to the second.
		if len(args) > 2 {
			t.errorf(n, "", "restart_timeout: one or two values expected")
			return
		}
		var xs []time.Duration
		for _, a := range args {
			x, err := strconv.Atoi(a)
			if err != nil || x <= 0 {
				t.errorf(n, "", "restart_timeout: %q is not a number of seconds", a)
				return
			}
			xs = append(xs, time.Duration(x)*time.Second)
		}
		b.RestartMin, b.RestartMax = xs[0], xs[len(xs)-1]
		t.at(t.bridgePath("restart_min"), n)
		t.at(t.bridgePath("restart_max"), n)
	case "start_type":
		str(&b.StartType, "start_type")
	case "threshold":
		if x, ok := number("threshold"); ok {
			b.Threshold = x
		}
	case "idle_timeout":
		seconds(&b.IdleTimeout, "idle_timeout")
	case "notifications":
		boolean(&b.Notifications, "notifications")
	case "notifications_local_only":
		boolean(&b.NotificationsLocalOnly, "notifications_local_only")
	case "notification_topic":
		str(&b.NotificationTopic, "notification_topic")
	case "try_private":
		boolean(&b.TryPrivate, "try_private")
	case "bridge_outgoing_retain":
		boolean(&b.OutgoingRetain, "outgoing_retain")
	case "bridge_attempt_unsubscribe":
		boolean(&b.AttemptUnsubscribe, "attempt_unsubscribe")
	case "round_robin":
		boolean(&b.RoundRobin, "round_robin")
	case "bridge_cafile":
		str(&b.TLS.CAFile, "tls.ca_file")
		b.Transport = "tls"
	case "bridge_capath":
		str(&b.TLS.CAPath, "tls.ca_path")
		b.Transport = "tls"
	case "bridge_certfile":
		str(&b.TLS.CertFile, "tls.cert_file")
	case "bridge_keyfile":
		str(&b.TLS.KeyFile, "tls.key_file")
	case "bridge_insecure":
		boolean(&b.TLS.Insecure, "tls.insecure")
	case "bridge_tls_version":
		if v, ok := one(); ok {
			switch v {
			case "tlsv1.2", "tlsv1.3":
				b.TLS.MinVersion = v
				t.at(t.bridgePath("tls.min_version"), n)
			default:
				t.warn(n, "bridge_tls_version %q: Gannet bridges use TLS 1.2 at least; kept at tlsv1.2", v)
			}
		}
	case "bridge_alpn":
		b.TLS.ALPN = append(b.TLS.ALPN, args...)
		t.at(t.bridgePath("tls.alpn"), n)
	case "bridge_max_packet_size":
		if x, ok := number("max_packet_size"); ok {
			b.MaxPacketSize = x
		}
	case "bridge_receive_maximum":
		if x, ok := number("receive_maximum"); ok {
			b.ReceiveMaximum = x
		}
	case "bridge_max_topic_alias":
		if x, ok := number("max_topic_alias"); ok {
			b.MaxTopicAlias = x
		}
	default:
		t.warn(n, "unsupported option %q (bridge %q)", w, t.bridge)
	}
}

// bridgeTopic translates "topic pattern [[[out|in|both] qos] local remote]";
// "" stands for an empty pattern or prefix.
func (t *mosquittoTranslator) bridgeTopic(n int, b *Bridge, args []string) {
	unq := func(s string) string {
		if s == `""` {
			return ""
		}
		return s
	}
	if len(args) > 5 || len(args) == 4 {
		t.errorf(n, "", "topic: want pattern [direction [qos [local-prefix remote-prefix]]], got %q", strings.Join(args, " "))
		return
	}
	r := BridgeTopic{Pattern: unq(args[0]), Direction: "out"}
	if len(args) > 1 {
		r.Direction = args[1]
		switch r.Direction {
		case "in", "out", "both":
		default:
			t.errorf(n, "", "topic: direction %q is not in, out or both", r.Direction)
			return
		}
	}
	if len(args) > 2 {
		q, err := strconv.Atoi(args[2])
		if err != nil || q < 0 || q > 2 {
			t.errorf(n, "", "topic: QoS %q is not 0, 1 or 2", args[2])
			return
		}
		r.QoS = q
	}
	if len(args) == 5 {
		r.LocalPrefix, r.RemotePrefix = unq(args[3]), unq(args[4])
	}
	b.Topics = append(b.Topics, r)
	t.at(t.bridgePath(fmt.Sprintf("topics[%d]", len(b.Topics)-1)), n)
}
